using './main.bicep'

// The prod AKS cluster's OIDC issuer (az aks show ... --query oidcIssuerProfile.issuerUrl -o tsv).
param aksOidcIssuerUrl = 'https://REPLACE-WITH-PROD-AKS-OIDC-ISSUER/'
param identityName = 'id-lkps-prod'
// The chart's values-prod.yaml reads its secrets from this vault (secrets.keyVault.name).
param keyVaultName = 'kv-lkps-prod'
