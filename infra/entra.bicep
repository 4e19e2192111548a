// The broker's Microsoft Entra objects (DESIGN.md, Who may ask and credential managedIdentity), with
// the Microsoft Graph Bicep extension. Deployed by scripts/entra-deploy.mjs, which azure.yaml runs as
// the preprovision hook (before main.bicep: its outputs become main's parameters through azd
// environment values) and again as the postprovision hook (once main.bicep has created the Function
// App and its identity: the redirect URIs and the federated credential need them). Every resource is
// keyed by uniqueName, so each run updates the same objects.
//
// The extension is restored from mcr.microsoft.com (bicepconfig.json, `extensions`); where that
// registry is out of reach this file cannot compile, and test/unit/infra.test.ts checks it as text.
// Deploying it needs Graph permissions: Application.ReadWrite.All (or Application Administrator)
// and AppRoleAssignment.ReadWrite.All for the caller role assignments.
extension microsoftGraphV1

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: part of every uniqueName and display name.')
param environmentName string

@description('The Function App\'s URL (main.bicep output BROKER_URL). Empty on the first run, before main.bicep: the redirect URIs are added by the postprovision run.')
param brokerUrl string = ''

@description('Object ids of the service principals (managed identities) that may call /api/token: each gets the app role Token.Request. A connection still lists them in `callers`.')
param callerPrincipalIds string[] = []

@description('Also create the connection app registration: a confidential client without any secret, whose credential is the broker\'s user-assigned identity (federated identity credential).')
param createConnectionApp bool = false

@description('Delegated permissions the connection app asks for (requiredResourceAccess): per resource app id, the ids of its delegated permissions (oauth2PermissionScopes). Default: Microsoft Graph openid, profile, offline_access, User.Read.')
param connectionAppDelegatedPermissions delegatedPermissionsType[] = [
  {
    resourceAppId: '00000003-0000-0000-c000-000000000000'
    scopeIds: [
      '37f7f235-527c-4136-accd-4a02d197296e' // openid
      '14dad69e-099b-42c9-810b-d002981feec1' // profile
      '7427e0e9-2fba-42fe-b0c0-848c9e6a8182' // offline_access
      'e1fe6dd8-ba31-4d61-89e7-88639da4683d' // User.Read
    ]
  }
]

@description('Object (principal) id of the broker\'s user-assigned identity (main.bicep output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID). Empty on the first run: the federated credential is added by the postprovision run.')
param brokerIdentityPrincipalId string = ''

@description('Delegated permissions on one resource app.')
type delegatedPermissionsType = {
  resourceAppId: string
  scopeIds: string[]
}

var tenantId = tenant().tenantId
var loginEndpoint = environment().authentication.loginEndpoint
var suffix = uniqueString(tenantId, subscription().id, environmentName)
var brokerAppUniqueName = 'm365-token-broker-${environmentName}-${suffix}'
var connectionAppUniqueName = 'm365-token-broker-connection-${environmentName}-${suffix}'

// App role ids: stable GUIDs derived from the app's unique name, so every run (and every reader)
// gets the same ids; an app role id must never change once assigned.
var tokenRequestRoleId = guid(brokerAppUniqueName, 'Token.Request')
var brokerAdminRoleId = guid(brokerAppUniqueName, 'Broker.Admin')

// The broker's own app registration: the audience of caller tokens (CALLER_AUTH=entra) and the
// client people sign in to through App Service authentication (ADMIN_AUTH=easyauth).
resource brokerApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: brokerAppUniqueName
  displayName: 'Token broker (${environmentName})'
  signInAudience: 'AzureADMyOrg'
  // api://<tenant id>/<unique name>: an App ID URI the default app management policy accepts for a
  // single-tenant app (api://<appId> is not known until the app exists).
  identifierUris: [
    'api://${tenantId}/${brokerAppUniqueName}'
  ]
  api: {
    // Caller tokens are v2 (iss {authority}/{tid}/v2.0); the broker also accepts v1 issuers.
    requestedAccessTokenVersion: 2
  }
  appRoles: [
    {
      id: tokenRequestRoleId
      value: 'Token.Request'
      displayName: 'Request tokens from the broker'
      description: 'Services (managed identities) with this role may call /api/token for the connections that list them in callers.'
      allowedMemberTypes: [
        'Application'
      ]
      isEnabled: true
    }
    {
      id: brokerAdminRoleId
      value: 'Broker.Admin'
      displayName: 'Broker administrator'
      description: 'People with this role may start consents and read the status page (ADMIN_ROLE).'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
  ]
  // App Service authentication signs people in with an id_token (no client secret exists).
  web: {
    redirectUris: empty(brokerUrl) ? [] : [
      '${brokerUrl}/.auth/login/aad/callback'
    ]
    implicitGrantSettings: {
      enableIdTokenIssuance: true
      enableAccessTokenIssuance: false
    }
  }
}

resource brokerSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: brokerApp.appId
  // Only principals holding one of the roles get tokens for the broker (the broker checks the role too).
  appRoleAssignmentRequired: true
}

// Token.Request for each caller: the resource is the broker's service principal.
resource callerAssignments 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for callerId in callerPrincipalIds: {
    appRoleId: tokenRequestRoleId
    principalId: callerId
    resourceId: brokerSp.id
  }
]

// The optional connection app (credential {"type": "managedIdentity"}): a confidential client whose
// only credential is a federated identity credential trusting the broker's user-assigned identity, so
// there is no client secret to store, expire or rotate.
resource connectionApp 'Microsoft.Graph/applications@v1.0' = if (createConnectionApp) {
  uniqueName: connectionAppUniqueName
  displayName: 'Token broker connection (${environmentName})'
  signInAudience: 'AzureADMyOrg'
  web: {
    redirectUris: empty(brokerUrl) ? [] : [
      '${brokerUrl}/api/callback'
    ]
  }
  requiredResourceAccess: map(connectionAppDelegatedPermissions, p => {
    resourceAppId: p.resourceAppId
    resourceAccess: map(p.scopeIds, id => {
      id: id
      type: 'Scope'
    })
  })

  resource brokerIdentityFic 'federatedIdentityCredentials@v1.0' = if (!empty(brokerIdentityPrincipalId)) {
    name: '${connectionAppUniqueName}/broker-identity'
    description: 'The token broker\'s user-assigned managed identity, as this app\'s client credential'
    issuer: '${loginEndpoint}${tenantId}/v2.0'
    subject: brokerIdentityPrincipalId
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

resource connectionSp 'Microsoft.Graph/servicePrincipals@v1.0' = if (createConnectionApp) {
  appId: connectionApp!.appId
}

// azd stores these outputs as environment values (the hook runs `azd env set`); main.parameters.json
// passes them to main.bicep. Identifiers only: the apps have no secret.
output BROKER_API_CLIENT_ID string = brokerApp.appId
output BROKER_API_URI string = brokerApp.identifierUris[0]
output BROKER_TENANT_ID string = tenantId
output BROKER_CALLER_ROLE_ID string = tokenRequestRoleId
output BROKER_CONNECTION_APP_CLIENT_ID string = createConnectionApp ? connectionApp!.appId : ''
output BROKER_CONNECTION_APP_SP_ID string = createConnectionApp ? connectionSp!.id : ''
