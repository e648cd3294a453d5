using './main.bicep'

// The non-prod AKS cluster's OIDC issuer (az aks show ... --query oidcIssuerProfile.issuerUrl -o tsv).
param aksOidcIssuerUrl = 'https://REPLACE-WITH-NONPROD-AKS-OIDC-ISSUER/'
param identityName = 'id-lkps-nonprod'
// Non-prod reads its secrets from a Kubernetes Secret (chart values-nonprod.yaml): no Key Vault access.
param keyVaultName = ''
