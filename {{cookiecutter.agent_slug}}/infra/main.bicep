// The Entra identity the {{ cookiecutter.agent_slug }} pods run as: a user-assigned managed identity (created here,
// or an existing one referenced by name) federated with the Helm chart's Kubernetes service account.
// Deploy: az deployment group create -g <resource group> -f infra/main.bicep -p infra/nonprod.bicepparam
targetScope = 'resourceGroup'

@description('Azure region of a newly created identity.')
param location string = resourceGroup().location

@description('Name of the user-assigned managed identity.')
param identityName string = 'id-{{ cookiecutter.agent_slug }}'

@description('Reference an existing identity by name instead of creating one (its client ID must be the chart\'s azure.clientId).')
param useExistingIdentity bool = false

@description('OIDC issuer URL of the AKS cluster: az aks show -g <rg> -n <cluster> --query oidcIssuerProfile.issuerUrl -o tsv')
param aksOidcIssuerUrl string

@description('Kubernetes namespace the chart is installed in.')
param namespace string = {{ cookiecutter.aks_namespace | bicep_quoted }}

@description('Kubernetes service account of the chart (values.yaml: serviceAccount.name).')
param serviceAccountName string = '{{ cookiecutter.agent_slug }}'

@description('Tags on the created identity.')
param tags object = {
  agent: '{{ cookiecutter.agent_slug }}'
  owner: {{ cookiecutter.owner_contact | bicep_quoted }}
}

// Workload identity: the pod's projected service account token is exchanged for an Entra token when its
// issuer, subject and audience match this federated credential exactly.
var federationSubject = 'system:serviceaccount:${namespace}:${serviceAccountName}'
var federationAudience = 'api://AzureADTokenExchange'

resource createdIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (!useExistingIdentity) {
  name: identityName
  location: location
  tags: tags
}

resource existingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = if (useExistingIdentity) {
  name: identityName
}

resource federatedCredential 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  name: '${identityName}/aks-${namespace}-${serviceAccountName}'
  properties: {
    issuer: aksOidcIssuerUrl
    subject: federationSubject
    audiences: [
      federationAudience
    ]
  }
  dependsOn: [
    createdIdentity
  ]
}

@description('Set the chart value azure.clientId to this (values.yaml), then grant the platform app role (infra/README.md).')
output clientId string = useExistingIdentity ? existingIdentity.properties.clientId : createdIdentity.properties.clientId

@description('Object ID of the identity\'s service principal: the principal of the platform app role assignment.')
output principalId string = useExistingIdentity ? existingIdentity.properties.principalId : createdIdentity.properties.principalId

output federationSubject string = federationSubject
