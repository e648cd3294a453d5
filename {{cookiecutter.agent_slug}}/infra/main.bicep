{%- if cookiecutter.agent_identity == "app_registration" -%}
// The Entra identity the {{ cookiecutter.agent_slug }} pods run as: the agent's app registration, configured here with the
// Microsoft Graph Bicep extension. It exposes access_as_client and lists the client apps pre-authorized for it (the
// platform lets only those start this agent), gets its service principal, a federated credential for the chart's
// Kubernetes service account (AKS workload identity: no secret anywhere) and the platform's Agent.Register app role.
// The app is found by its unique name (created when no app has it, updated when one does): infra/README.md.
// Deploy: AKS_OIDC_ISSUER_URL=... az deployment group create -g <resource group> -f infra/main.bicep -p infra/nonprod.bicepparam
extension microsoftGraphV1

targetScope = 'resourceGroup'

@description('Unique name of the agent\'s app registration (Graph\'s alternate key; infra/README.md sets it on an existing app).')
param agentAppUniqueName string = 'livekit-agent-{{ cookiecutter.agent_slug }}'

@description('Display name of the app registration.')
param agentAppDisplayName string = {{ cookiecutter.agent_name | bicep_quoted }}

@description('The app\'s Application (client) ID (agent_entra_app_id): the chart\'s azure.clientId, the LiveKit agent name and what clients start sessions with.')
param agentAppId string = '{{ cookiecutter.agent_entra_app_id }}'

@description('Client apps pre-authorized for access_as_client (client_app_ids): the only apps the platform lets start this agent when it enforces client authorization. The deployment replaces the list.')
param preAuthorizedClientAppIds array = [
{%- for client in cookiecutter.client_app_ids | client_ids %}
  '{{ client }}'
{%- endfor %}
]

@description('The LiveKit Platform Service\'s app ID (platform_app_id), whose Agent.Register app role the agent needs.')
param platformAppId string = '{{ cookiecutter.platform_app_id }}'

@description('Assign the platform\'s Agent.Register app role here. The deploying principal then needs AppRoleAssignment.ReadWrite.All in Graph (a Privileged Role Administrator, or the platform team); false leaves it to them (infra/README.md).')
param assignPlatformRole bool = true

@description('OIDC issuer URL of the AKS cluster: az aks show -g <rg> -n <cluster> --query oidcIssuerProfile.issuerUrl -o tsv')
param aksOidcIssuerUrl string

@description('The environment (cluster) this deployment federates: part of the federated credential\'s name, one per cluster.')
param environmentName string

@description('Kubernetes namespace the chart is installed in.')
param namespace string = {{ cookiecutter.aks_namespace | bicep_quoted }}

@description('Kubernetes service account of the chart (values.yaml: serviceAccount.name).')
param serviceAccountName string = '{{ cookiecutter.agent_slug }}'

// The scope clients are pre-authorized for; its ID is derived from the app's unique name, so every deployment
// (and every environment) writes the same one.
var clientScope = 'access_as_client'
var clientScopeId = guid(agentAppUniqueName, clientScope)
// The platform's app role an agent needs to register (the platform team publishes its value).
var platformRole = 'Agent.Register'
// Workload identity: the pod's projected service account token is exchanged for an Entra token when its
// issuer, subject and audience match this federated credential exactly.
var federationSubject = 'system:serviceaccount:${namespace}:${serviceAccountName}'
var federationAudience = 'api://AzureADTokenExchange'

resource agentApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: agentAppUniqueName
  displayName: agentAppDisplayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    'api://${agentAppId}'
  ]
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: clientScopeId
        value: clientScope
        type: 'Admin'
        isEnabled: true
        adminConsentDisplayName: 'Start sessions with ${agentAppDisplayName}'
        adminConsentDescription: 'Lets a pre-authorized client app start sessions with this agent through the LiveKit platform.'
      }
    ]
    preAuthorizedApplications: [for clientAppId in preAuthorizedClientAppIds: {
      appId: clientAppId
      delegatedPermissionIds: [
        clientScopeId
      ]
    }]
  }
}

resource agentServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: agentApp.appId
}

// Graph addresses an app's federated credentials as '<app unique name>/<credential name>'.
resource federatedCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${agentApp.uniqueName}/aks-${environmentName}-${namespace}-${serviceAccountName}'
  description: 'AKS workload identity of the ${serviceAccountName} service account in ${namespace} (${environmentName})'
  issuer: aksOidcIssuerUrl
  subject: federationSubject
  audiences: [
    federationAudience
  ]
}

resource platformServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' existing = if (assignPlatformRole) {
  appId: platformAppId
}

// The role's ID is looked up by its value on the platform's service principal, not copied as a GUID.
resource platformRoleAssignment 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (assignPlatformRole) {
  principalId: agentServicePrincipal.id
  resourceId: platformServicePrincipal.id
  appRoleId: filter(platformServicePrincipal.appRoles, role => role.value == platformRole)[0].id
}

@description('Must equal agent_entra_app_id (the chart\'s azure.clientId); if not, agentAppUniqueName names another app.')
output appId string = agentApp.appId

@description('Object ID of the agent\'s service principal: the principal of the platform\'s app role assignment.')
output principalId string = agentServicePrincipal.id

output federationSubject string = federationSubject
{%- else -%}
// The Entra identity the {{ cookiecutter.agent_slug }} pods run as: a user-assigned managed identity (created here, or an
// existing one referenced by name) federated with the Helm chart's Kubernetes service account, and granted the
// platform's Agent.Register app role with the Microsoft Graph Bicep extension. A managed identity has no app
// registration, so it cannot expose access_as_client: this agent does not enforce client authorization.
// Deploy: AKS_OIDC_ISSUER_URL=... az deployment group create -g <resource group> -f infra/main.bicep -p infra/nonprod.bicepparam
extension microsoftGraphV1

targetScope = 'resourceGroup'

@description('Azure region of a newly created identity.')
param location string = resourceGroup().location

@description('Name of the user-assigned managed identity (infra/README.md creates it first: its client ID is agent_entra_app_id).')
param identityName string = 'id-{{ cookiecutter.agent_slug }}'

@description('Reference an existing identity by name instead of creating one (its client ID must be the chart\'s azure.clientId).')
param useExistingIdentity bool = false

@description('The LiveKit Platform Service\'s app ID (platform_app_id), whose Agent.Register app role the agent needs.')
param platformAppId string = '{{ cookiecutter.platform_app_id }}'

@description('Assign the platform\'s Agent.Register app role here. The deploying principal then needs AppRoleAssignment.ReadWrite.All in Graph (a Privileged Role Administrator, or the platform team); false leaves it to them (infra/README.md).')
param assignPlatformRole bool = true

@description('OIDC issuer URL of the AKS cluster: az aks show -g <rg> -n <cluster> --query oidcIssuerProfile.issuerUrl -o tsv')
param aksOidcIssuerUrl string

@description('The environment (cluster) this deployment federates: part of the federated credential\'s name, one per cluster.')
param environmentName string

@description('Kubernetes namespace the chart is installed in.')
param namespace string = {{ cookiecutter.aks_namespace | bicep_quoted }}

@description('Kubernetes service account of the chart (values.yaml: serviceAccount.name).')
param serviceAccountName string = '{{ cookiecutter.agent_slug }}'

@description('Tags on the created identity.')
param tags object = {
  agent: '{{ cookiecutter.agent_slug }}'
  owner: {{ cookiecutter.owner_contact | bicep_quoted }}
  environment: environmentName
}

// The platform's app role an agent needs to register (the platform team publishes its value).
var platformRole = 'Agent.Register'
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

var clientId = useExistingIdentity ? existingIdentity.properties.clientId : createdIdentity.properties.clientId
var principalId = useExistingIdentity ? existingIdentity.properties.principalId : createdIdentity.properties.principalId

resource federatedCredential 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  name: '${identityName}/aks-${environmentName}-${namespace}-${serviceAccountName}'
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

resource platformServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' existing = if (assignPlatformRole) {
  appId: platformAppId
}

// The role's ID is looked up by its value on the platform's service principal, not copied as a GUID.
resource platformRoleAssignment 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (assignPlatformRole) {
  principalId: principalId
  resourceId: platformServicePrincipal.id
  appRoleId: filter(platformServicePrincipal.appRoles, role => role.value == platformRole)[0].id
}

@description('Must equal agent_entra_app_id (the chart\'s azure.clientId) in the environment whose values set it.')
output clientId string = clientId

@description('Object ID of the identity\'s service principal: the principal of the platform\'s app role assignment.')
output principalId string = principalId

output federationSubject string = federationSubject
{%- endif %}
