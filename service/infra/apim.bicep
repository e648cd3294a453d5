// Gateway mode in Azure API Management: the named values and the policy fragment apim/lkps-gateway-policy.xml, in an
// existing API Management instance. Include the fragment in the register and session-start operations' inbound
// policy (<include-fragment fragment-id="lkps-gateway" />); see README.md.
// Deploy: az deployment group create -g <API Management resource group> -f service/infra/apim.bicep -p apimName=<name> ...
targetScope = 'resourceGroup'

@description('Name of the existing API Management instance.')
param apimName string

@description('Entra tenant whose tokens the gateway accepts (the chart\'s azure.tenantId).')
param entraTenantId string

@description('Client ID of the platform\'s app registration: the tokens\' audience (the chart\'s identity.entra.audiences).')
param platformAppId string

@description('Key Vault secret identifier of the gateway\'s shared secret (https://<vault>.vault.azure.net/secrets/<name>): the same secret the chart gives the service as LKPS_GATEWAY_SHARED_SECRET.')
param gatewaySharedSecretUri string

@description('Client ID of the user-assigned identity API Management reads Key Vault with; empty: its system-assigned identity. Either needs Key Vault Secrets User on the secret.')
param apimIdentityClientId string = ''

resource apim 'Microsoft.ApiManagement/service@2022-08-01' existing = {
  name: apimName
}

resource tenantValue 'Microsoft.ApiManagement/service/namedValues@2022-08-01' = {
  parent: apim
  name: 'lkps-entra-tenant-id'
  properties: {
    displayName: 'lkps-entra-tenant-id'
    value: entraTenantId
    secret: false
  }
}

resource platformAppValue 'Microsoft.ApiManagement/service/namedValues@2022-08-01' = {
  parent: apim
  name: 'lkps-platform-app-id'
  properties: {
    displayName: 'lkps-platform-app-id'
    value: platformAppId
    secret: false
  }
}

// A Key Vault reference: API Management refreshes it from the vault, so rotating the secret needs no deployment.
resource sharedSecretValue 'Microsoft.ApiManagement/service/namedValues@2022-08-01' = {
  parent: apim
  name: 'lkps-gateway-shared-secret'
  properties: {
    displayName: 'lkps-gateway-shared-secret'
    secret: true
    keyVault: {
      secretIdentifier: gatewaySharedSecretUri
      identityClientId: empty(apimIdentityClientId) ? null : apimIdentityClientId
    }
  }
}

resource gatewayFragment 'Microsoft.ApiManagement/service/policyFragments@2022-08-01' = {
  parent: apim
  name: 'lkps-gateway'
  properties: {
    description: 'lkps gateway mode: validate the Entra token and app role, replace the identity headers, add the shared secret'
    format: 'rawxml'
    value: loadTextContent('apim/lkps-gateway-policy.xml')
  }
  dependsOn: [
    tenantValue
    platformAppValue
    sharedSecretValue
  ]
}

output fragmentId string = gatewayFragment.name
