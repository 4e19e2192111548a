// The whole token broker in one deployment: `azd up` (or `az deployment sub create`).
// Resource group, user-assigned identity, host storage, Key Vault, Log Analytics + Application
// Insights, and the Function App on a Flex Consumption plan. Nothing secret is written to an app
// setting or an output: every service is reached with the app's managed identity.
targetScope = 'subscription'

import { connectionsFileType } from './types.bicep'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used for the resource group name and a unique suffix for every resource.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer the Flex Consumption plan: az functionapp list-flexconsumption-locations')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse. Default: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person (or pipeline) running the deployment; azd fills it from AZURE_PRINCIPAL_ID. Empty: no deployer role.')
param principalId string = ''

@description('What principalId is; azd fills it from AZURE_PRINCIPAL_TYPE.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Give the deployer Key Vault Secrets Officer on the vault for good. Off by default: whoever holds it can read every refresh token. Put a client secret in with a time-bound assignment instead (docs/deploy.md).')
param grantDeployerSecretsOfficer bool = false

@description('Key Vault public network access. Disabled needs a private endpoint and VNet integration, which this template does not create.')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

@description('Days a deleted vault or secret stays recoverable (7-90). Cannot be changed after the vault is created.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionInDays int = 90

@description('Memory per Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Connections: the content of connections.json as an object (azd fills it from the BROKER_CONNECTIONS environment value, see docs/deploy.md). Empty: no connections.')
param brokerConnections connectionsFileType = {}

@description('NCRONTAB (6 fields, UTC) of the rotation timer.')
param rotationSchedule string = '0 */5 * * * *'

@description('ISO-8601 duration before expiry at which cached access tokens are refreshed in the background.')
param refreshAhead string = 'PT5M'

@description('ISO-8601 duration before a deadline (refresh-token inactivity, ACS expiry, client-secret expiry) from which a warning is logged.')
param warnBefore string = 'P14D'

@description('How refreshes of one grant are serialized across instances: lease (blob lease in the host storage; refused while it is unreachable), lease-or-unlocked (runs unlocked while storage is unreachable: only for providers that tolerate refresh-token reuse), process (one instance only). See docs/scale-out.md.')
@allowed([
  'lease'
  'lease-or-unlocked'
  'process'
])
param refreshLock string = 'lease'

@description('How many connections one rotation pass refreshes at once.')
@minValue(1)
@maxValue(256)
param rotationConcurrency int = 8

@description('KEY_VAULT_PACING: Key Vault requests per 10 s, all/writes, or off (README, Key Vault service limits).')
param keyVaultPacing string = '2000/150'

// Who may ask (DESIGN.md): the broker's own app registration comes from infra/entra.bicep, which the
// azd preprovision hook deploys first (scripts/entra-deploy.mjs) and whose outputs it stores as the azd
// environment values below. Without them (no Graph permissions, or az deployment of main alone) both
// modes fall back to `key`: the function key, as before.

@description('CALLER_AUTH: how services calling /api/token prove who they are. entra needs brokerApiClientId and brokerTenantId; without them the app runs with key.')
@allowed([
  'entra'
  'key'
])
param callerAuth string = 'entra'

@description('ADMIN_AUTH: how people reach /api/start and /api/status. easyauth turns on App Service authentication with the broker app registration; without it the app runs with key.')
@allowed([
  'easyauth'
  'key'
])
param adminAuth string = 'easyauth'

@description('Application (client) id of the broker\'s app registration (entra.bicep output BROKER_API_CLIENT_ID). Empty: key modes.')
param brokerApiClientId string = ''

@description('Application ID URI of the broker\'s app registration (entra.bicep output BROKER_API_URI).')
param brokerApiUri string = ''

@description('Tenant (GUID) whose tokens identify callers and people (entra.bicep output BROKER_TENANT_ID). Empty: key modes.')
param brokerTenantId string = ''

@description('Client ids of the services (managed identities, service principals) that call the admin API (/api/connections, /api/templates, invitations) with their own app token holding the ADMIN_ROLE app role. Under easyauth the platform accepts only tokens obtained by the apps listed here besides the broker\'s own; empty: only people manage connections.')
param adminServiceClientIds string[] = []

@description('Client id of the optional connection app registration entra.bicep creates (BROKER_CONNECTION_APP_CLIENT_ID). Set: an example connection `graph` using it with the managed-identity credential is added to the connections, unless they already have one of that id.')
param connectionAppClientId string = ''

@description('Delegated scopes of the example connection (the connection app\'s requiredResourceAccess asks for them).')
param connectionAppScopes string[] = [
  'https://graph.microsoft.com/User.Read'
]

@secure()
@description('ALERT_WEBHOOK_URL: where state-change events are POSTed (https). A credential (whoever holds a Teams or Slack webhook can post to the channel): kept out of the deployment history, stored as the vault secret alert-webhook-url, and the app setting is a Key Vault reference to it. Empty: log lines (and the alert rules) only.')
param alertWebhookUrl string = ''

@description('E-mail addresses the alerts action group mails. Empty: the alert rules still fire (Azure Monitor shows them) but mail nobody.')
param alertEmailAddresses string[] = []

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-broker-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
// Names are fixed here, not read back from module outputs, so What-If can predict every resource
// (bicepconfig.json raises what-if-short-circuiting); modules that use them depend on their creators.
var identityName = 'id-broker-${resourceToken}'
var storageAccountName = 'st${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'
var logAnalyticsName = 'log-${resourceToken}'
var applicationInsightsName = 'appi-${resourceToken}'
// The vault secret holding ALERT_WEBHOOK_URL; the app setting refers to it (resolved by the platform
// with the app's identity), so the URL is in neither an app setting nor the deployment history.
var alertWebhookSecretName = empty(alertWebhookUrl) ? '' : 'alert-webhook-url'

// The entra modes need the broker app registration; without it both fall back to the function key.
var effectiveCallerAuth = !empty(brokerApiClientId) && !empty(brokerTenantId) ? callerAuth : 'key'
var effectiveAdminAuth = !empty(brokerApiClientId) && !empty(brokerTenantId) ? adminAuth : 'key'

// The example connection over the secretless connection app (entra.bicep with createConnectionApp = true): its
// client assertion is a token of the broker's user-assigned identity, trusted by a federated credential.
var exampleConnection = empty(connectionAppClientId)
  ? {}
  : {
      graph: {
        provider: 'entra'
        tenant: brokerTenantId
        clientId: connectionAppClientId
        credential: {
          type: 'managedIdentity'
        }
        scopes: connectionAppScopes
      }
    }
var connections = empty(exampleConnection)
  ? brokerConnections
  : union(brokerConnections, { connections: union(exampleConnection, brokerConnections.?connections ?? {}) })

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity './modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: identityName
    location: location
    tags: tags
  }
}

module monitoring './modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: logAnalyticsName
    applicationInsightsName: applicationInsightsName
    location: location
    tags: tags
  }
}

module storage './modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    containerNames: [
      deploymentContainerName
      'broker-locks'
    ]
  }
}

module keyVault './modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    publicNetworkAccess: keyVaultPublicNetworkAccess
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    alertWebhookSecretName: alertWebhookSecretName
    alertWebhookUrl: alertWebhookUrl
  }
}

module roles './modules/role-assignments.bicep' = {
  name: 'role-assignments'
  scope: rg
  params: {
    storageAccountName: storageAccountName
    keyVaultName: keyVaultName
    applicationInsightsName: applicationInsightsName
    identityName: identityName
    deployerPrincipalId: grantDeployerSecretsOfficer ? principalId : ''
    deployerPrincipalType: principalType
  }
  dependsOn: [
    identity
    storage
    keyVault
    monitoring
  ]
}

module functionApp './modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storageAccountName
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: applicationInsightsName
    keyVaultUri: keyVault.outputs.uri
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    brokerConnections: connections
    rotationSchedule: rotationSchedule
    refreshAhead: refreshAhead
    rotationConcurrency: rotationConcurrency
    keyVaultPacing: keyVaultPacing
    warnBefore: warnBefore
    refreshLock: refreshLock
    callerAuth: effectiveCallerAuth
    adminAuth: effectiveAdminAuth
    brokerTenantId: brokerTenantId
    brokerApiClientId: brokerApiClientId
    brokerApiUri: brokerApiUri
    adminServiceClientIds: adminServiceClientIds
    alertWebhookSecretName: alertWebhookSecretName
  }
  // The host reads its storage and the package container with the identity from its first start.
  // (The webhook's vault secret exists by then: keyVault.outputs.uri makes the app wait for that module.)
  dependsOn: [
    roles
  ]
}

module alerts './modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    name: 'broker-${resourceToken}'
    location: location
    tags: tags
    applicationInsightsName: applicationInsightsName
    emailAddresses: alertEmailAddresses
  }
  dependsOn: [
    monitoring
  ]
}

// Outputs land in .azure/<env>/.env: names and URLs only, never a key, connection string or secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = functionApp.outputs.name
output BROKER_URL string = functionApp.outputs.url
output BROKER_CALLBACK_URL string = '${functionApp.outputs.url}/api/callback'
output BROKER_STATUS_URL string = '${functionApp.outputs.url}/api/status'
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.uri
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
// The identity's object id: the subject of the connection app's federated credential (postprovision).
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output CALLER_AUTH string = effectiveCallerAuth
output ADMIN_AUTH string = effectiveAdminAuth
output ALERTS_ACTION_GROUP_ID string = alerts.outputs.actionGroupId
