// The identity of the LiveKit Platform Service (lkps) on AKS: a user-assigned managed identity (created here, or an
// existing one referenced by name) federated with the chart's Kubernetes service account, granted Microsoft Graph's
// Application.Read.All application permission (client-to-agent authorization reads the agents' app registrations)
// and, when the chart reads its secrets from Key Vault, read access to exactly those secrets.
// Deploy: az deployment group create -g <resource group> -f service/infra/main.bicep -p service/infra/nonprod.bicepparam
targetScope = 'resourceGroup'

@description('Azure region of a newly created identity.')
param location string = resourceGroup().location

@description('Name of the user-assigned managed identity.')
param identityName string = 'id-lkps'

@description('Reference an existing identity by name instead of creating one (its client ID must be the chart\'s azure.clientId).')
param useExistingIdentity bool = false

@description('OIDC issuer URL of the AKS cluster: az aks show -g <rg> -n <cluster> --query oidcIssuerProfile.issuerUrl -o tsv')
param aksOidcIssuerUrl string

@description('Kubernetes namespace the chart is installed in (helm --namespace).')
param namespace string = 'livekit-platform'

@description('The chart\'s service account (values.yaml: serviceAccount.name).')
param serviceAccountName string = 'lkps'

@description('The migration Job\'s service account (values.yaml: migration.serviceAccountName); federated only with Key Vault, where its CSI volume reads the database secret.')
param migrationServiceAccountName string = 'lkps-migrate'

@description('Grant Microsoft Graph Application.Read.All to the identity (graph-permission.bicep). The deploying principal then needs AppRoleAssignment.ReadWrite.All and Application.Read.All in Graph (a Privileged Role Administrator); false leaves it to an admin (README.md).')
param grantGraphPermission bool = true

@description('Key Vault holding the service\'s secrets (chart: secrets.source=keyVault, secrets.keyVault.name); empty when they come from an existing Kubernetes Secret.')
param keyVaultName string = ''

@description('The Key Vault secrets the identity may read (chart: secrets.keyVault.objects); add the gateway\'s shared secret in gateway mode.')
param keyVaultSecretNames array = [
  'livekit-api-key'
  'livekit-api-secret'
  'lkps-database-url'
  'lkps-agent-token-secret'
]

@description('Tags on the created identity.')
param tags object = {
  service: 'lkps'
  owner: 'livekit-platform'
}

// Workload identity: a pod's projected service account token is exchanged for an Entra token of this identity
// when its issuer, subject and audience match a federated credential exactly.
var federationAudience = 'api://AzureADTokenExchange'
var federationSubject = 'system:serviceaccount:${namespace}:${serviceAccountName}'
var migrationFederationSubject = 'system:serviceaccount:${namespace}:${migrationServiceAccountName}'
var useKeyVault = !empty(keyVaultName)
// Built-in role "Key Vault Secrets User": read secret contents (vaults with Azure RBAC authorization).
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource createdIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (!useExistingIdentity) {
  name: identityName
  location: location
  tags: tags
}

resource existingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = if (useExistingIdentity) {
  name: identityName
}

var clientId = useExistingIdentity ? existingIdentity.properties.clientId : createdIdentity.properties.clientId
var principalId = useExistingIdentity ? existingIdentity.properties.principalId : createdIdentity.properties.principalId

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

// Azure refuses concurrent writes of one identity's federated credentials: this one waits for the first.
resource migrationFederatedCredential 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = if (useKeyVault) {
  name: '${identityName}/aks-${namespace}-${migrationServiceAccountName}'
  properties: {
    issuer: aksOidcIssuerUrl
    subject: migrationFederationSubject
    audiences: [
      federationAudience
    ]
  }
  dependsOn: [
    federatedCredential
  ]
}

module graphPermission 'graph-permission.bicep' = if (grantGraphPermission) {
  name: 'lkps-graph-permission'
  params: {
    principalId: principalId
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = if (useKeyVault) {
  name: keyVaultName
}

resource vaultSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [for secretName in keyVaultSecretNames: if (useKeyVault) {
  parent: vault
  name: secretName
}]

// Read access per secret, not per vault: a vault shared with other workloads stays closed to the service.
resource secretReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (secretName, i) in keyVaultSecretNames: if (useKeyVault) {
  name: guid(resourceGroup().id, keyVaultName, secretName, identityName, keyVaultSecretsUserRoleId)
  scope: vaultSecrets[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

@description('Set the chart value azure.clientId to this (values.yaml).')
output clientId string = clientId

@description('Object ID of the identity\'s service principal: the principal of the Graph app role assignment.')
output principalId string = principalId

output federationSubject string = federationSubject
