// The broker: a Linux Function App on a Flex Consumption plan (FC1), Node 22, running as a
// user-assigned identity. HTTPS only, TLS 1.2, FTP and basic (SCM) publishing credentials off;
// the deployment package is read from a blob container with the identity.
param name string
param planName string
param location string
param tags object = {}

@description('azd service name (azure.yaml); the site carries it as the azd-service-name tag.')
param serviceName string = 'api'

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string

@description('Vault URI, https://<name>.vault.azure.net/')
param keyVaultUri string

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

param brokerConnections object = {}
param rotationSchedule string = '0 */5 * * * *'
param refreshAhead string = 'PT5M'
param warnBefore string = 'P14D'

@description('REFRESH_LOCK: how refreshes of one grant are serialized across instances (docs/scale-out.md).')
@allowed([
  'lease'
  'lease-or-unlocked'
  'process'
])
param refreshLock string = 'lease'

@minValue(1)
@maxValue(256)
param rotationConcurrency int = 8

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      // On Flex Consumption the runtime is set here, not with FUNCTIONS_WORKER_RUNTIME or linuxFxVersion.
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// Basic-auth publishing off: azd and az deploy with Entra ID tokens.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
  dependsOn: [
    ftpPublishing
  ]
}

// Every setting the broker reads in Azure. No secret here: storage, Key Vault and Application
// Insights are reached with the identity (AZURE_CLIENT_ID selects it for DefaultAzureCredential).
// A separate resource, so BROKER_PUBLIC_URL can use the site's own host name without a cycle.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
    AZURE_CLIENT_ID: identityClientId
    KEY_VAULT_URL: keyVaultUri
    BROKER_PUBLIC_URL: 'https://${site.properties.defaultHostName}'
    BROKER_CONNECTIONS: empty(brokerConnections) ? '' : string(brokerConnections)
    ROTATION_SCHEDULE: rotationSchedule
    REFRESH_AHEAD: refreshAhead
    ROTATION_CONCURRENCY: string(rotationConcurrency)
    WARN_BEFORE: warnBefore
    REFRESH_LOCK: refreshLock
  }
  dependsOn: [
    scmPublishing
  ]
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output url string = 'https://${site.properties.defaultHostName}'
