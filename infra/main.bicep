// The whole token broker in one deployment: `azd up` (or `az deployment sub create`).
// Resource group, user-assigned identity, host storage, Key Vault, Log Analytics + Application
// Insights, and the Function App on a Flex Consumption plan. Nothing secret is written to an app
// setting or an output: every service is reached with the app's managed identity.
targetScope = 'subscription'

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

@description('Give the deployer Key Vault Secrets Officer on the vault, so the CLI and az can set client secrets.')
param grantDeployerSecretsOfficer bool = true

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
param brokerConnections object = {}

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

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-broker-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity './modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-broker-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring './modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
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
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    publicNetworkAccess: keyVaultPublicNetworkAccess
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
  }
}

module roles './modules/role-assignments.bicep' = {
  name: 'role-assignments'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: grantDeployerSecretsOfficer ? principalId : ''
    deployerPrincipalType: principalType
  }
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
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultUri: keyVault.outputs.uri
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    brokerConnections: brokerConnections
    rotationSchedule: rotationSchedule
    refreshAhead: refreshAhead
    rotationConcurrency: rotationConcurrency
    warnBefore: warnBefore
    refreshLock: refreshLock
  }
  // The host reads its storage and the package container with the identity from its first start.
  dependsOn: [
    roles
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
