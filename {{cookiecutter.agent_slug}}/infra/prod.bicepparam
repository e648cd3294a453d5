using './main.bicep'

// The prod AKS cluster's OIDC issuer (az aks show ... --query oidcIssuerProfile.issuerUrl -o tsv).
param aksOidcIssuerUrl = 'https://REPLACE-WITH-PROD-AKS-OIDC-ISSUER/'
param identityName = 'id-{{ cookiecutter.agent_slug }}-prod'
