using './main.bicep'

// The nonprod AKS cluster's OIDC issuer, read when the file is compiled:
//   AKS_OIDC_ISSUER_URL=$(az aks show -g <rg> -n <cluster> --query oidcIssuerProfile.issuerUrl -o tsv)
// Unset, the deployment stops before it changes anything.
param aksOidcIssuerUrl = readEnvironmentVariable('AKS_OIDC_ISSUER_URL')
param environmentName = 'nonprod'
