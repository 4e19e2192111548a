// The broker: a Linux Function App on a Flex Consumption plan (FC1), Node 22, running as a
// user-assigned identity. HTTPS only, TLS 1.2, FTP and basic (SCM) publishing credentials off;
// the deployment package is read from a blob container with the identity. With ADMIN_AUTH=easyauth,
// App Service authentication (Entra provider) signs people in and lets every request through.
import { connectionsFileType, tagsType } from '../types.bicep'

param name string
param planName string
param location string
param tags tagsType = {}

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

param brokerConnections connectionsFileType = {}
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

@description('KEY_VAULT_PACING: Key Vault requests per 10 s, all/writes, or off.')
param keyVaultPacing string = '2000/150'

@description('CALLER_AUTH (DESIGN.md, Who may ask). main.bicep passes key unless the broker app registration is known.')
@allowed([
  'entra'
  'key'
])
param callerAuth string = 'key'

@description('ADMIN_AUTH. easyauth also configures App Service authentication (authsettingsV2) below.')
@allowed([
  'easyauth'
  'key'
])
param adminAuth string = 'key'

@description('BROKER_TENANT_ID: tenant (GUID) of callers and people. Required by entra and easyauth.')
param brokerTenantId string = ''

@description('BROKER_API_CLIENT_ID: the broker app registration\'s client id. Required by entra and easyauth.')
param brokerApiClientId string = ''

@description('BROKER_API_URI: the broker app registration\'s Application ID URI.')
param brokerApiUri string = ''

@description('Client ids of services allowed to call the admin API with their own app token (besides the broker\'s own app).')
param adminServiceClientIds string[] = []

@description('Vault secret holding ALERT_WEBHOOK_URL (main.bicep stores it); the setting is a Key Vault reference to it. Empty: not set.')
param alertWebhookSecretName string = ''

// Login endpoint of this cloud without its trailing slash (https://login.microsoftonline.com in Azure).
var loginEndpoint = environment().authentication.loginEndpoint
var authority = endsWith(loginEndpoint, '/') ? take(loginEndpoint, length(loginEndpoint) - 1) : loginEndpoint

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
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

resource site 'Microsoft.Web/sites@2025-03-01' = {
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
    // Key Vault references in app settings (ALERT_WEBHOOK_URL) resolve with the app's identity.
    keyVaultReferenceIdentity: identityId
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
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
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
resource appSettings 'Microsoft.Web/sites/config@2025-03-01' = {
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
    KEY_VAULT_PACING: keyVaultPacing
    WARN_BEFORE: warnBefore
    REFRESH_LOCK: refreshLock
    // Who may ask (DESIGN.md). An empty setting counts as unset (src/lib/config/settings.ts), so the
    // entra/easyauth settings are empty in key modes and ALERT_WEBHOOK_URL is empty without a webhook.
    CALLER_AUTH: callerAuth
    ADMIN_AUTH: adminAuth
    BROKER_TENANT_ID: brokerTenantId
    BROKER_API_CLIENT_ID: brokerApiClientId
    BROKER_API_URI: brokerApiUri
    BROKER_AUTHORITY: authority
    // The app role entra.bicep defines for people (allowedMemberTypes User).
    ADMIN_ROLE: 'Broker.Admin'
    // A Key Vault reference, never the URL itself: a webhook URL is a credential.
    ALERT_WEBHOOK_URL: empty(alertWebhookSecretName)
      ? ''
      : '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${alertWebhookSecretName})'
  }
  dependsOn: [
    scmPublishing
  ]
}

// ADMIN_AUTH=easyauth: App Service authentication with the broker's own app registration. People sign
// in with OpenID Connect (an id_token only: no client secret, nothing to rotate), the platform passes
// X-MS-CLIENT-PRINCIPAL with their app roles, and unauthenticated requests go through to the broker,
// which decides per route (DESIGN.md, Who may ask): /api/token checks caller tokens itself, /api/callback
// stays anonymous. The token store is off: the broker never needs the people's tokens.
// Tokens are accepted only for the broker's own app: `aud` its client id or URI (allowedAudiences), and
// obtained by the broker's own app (allowedApplications: `azp`/`appid`), so another app of the tenant
// that gets a token for the broker's API, for a person holding Broker.Admin, does not make a session.
// /api/token is excluded: callers present their own app tokens there (another app's `azp` by design),
// which the broker verifies itself (CALLER_AUTH=entra); the platform would refuse them with a bare 403.
resource authSettings 'Microsoft.Web/sites/config@2025-03-01' = if (adminAuth == 'easyauth') {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
      excludedPaths: [
        '/api/token'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: brokerApiClientId
          openIdIssuer: '${authority}/${brokerTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: filter([brokerApiClientId, brokerApiUri], a => !empty(a))
          defaultAuthorizationPolicy: {
            // Admin services present their own app tokens (their `azp`): listed, or the platform refuses
            // them with a bare 403 before the broker can check their ADMIN_ROLE.
            allowedApplications: concat([brokerApiClientId], adminServiceClientIds)
          }
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
  dependsOn: [
    appSettings
  ]
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output url string = 'https://${site.properties.defaultHostName}'
