using './main.bicep'

// The non-prod AKS cluster's OIDC issuer (az aks show ... --query oidcIssuerProfile.issuerUrl -o tsv).
param aksOidcIssuerUrl = 'https://REPLACE-WITH-NONPROD-AKS-OIDC-ISSUER/'
param identityName = 'id-{{ cookiecutter.agent_slug }}-nonprod'
