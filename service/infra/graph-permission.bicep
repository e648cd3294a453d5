// Microsoft Graph's Application.Read.All application permission for the service's identity: the service reads each
// agent's app registration (api.preAuthorizedApplications) to check which client apps may start it.
// Deployed by main.bicep; the deploying principal needs AppRoleAssignment.ReadWrite.All and Application.Read.All.
extension microsoftGraphV1

@description('Object ID of the identity\'s service principal (main.bicep: principalId).')
param principalId string

// Microsoft Graph's well-known application ID, the same in every tenant.
var graphAppId = '00000003-0000-0000-c000-000000000000'
var permission = 'Application.Read.All'

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

// The role's ID is looked up by its value on Graph's service principal, not copied as a GUID.
resource applicationReadAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: principalId
  resourceId: graph.id
  appRoleId: filter(graph.appRoles, role => role.value == permission)[0].id
}

output appRoleId string = applicationReadAll.appRoleId
