// The broker's secret store: refresh tokens (rt-{connectionId}), broker-seal-key and client secrets.
// Azure RBAC only (no access policies), soft delete and purge protection on.
import { tagsType } from '../types.bicep'

param name string
param location string
param tags tagsType = {}

@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Name of the vault secret holding the alert webhook URL; empty: no webhook.')
param alertWebhookSecretName string = ''

@secure()
@description('ALERT_WEBHOOK_URL, stored as that secret (a credential: it never becomes an app setting value).')
param alertWebhookUrl string = ''

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

// Written through Azure Resource Manager (the deployer's control-plane rights on the vault), so the
// deployer needs no data-plane role for it; the app reads it through its Key Vault reference.
resource alertWebhook 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (!empty(alertWebhookSecretName)) {
  parent: vault
  name: empty(alertWebhookSecretName) ? 'unused' : alertWebhookSecretName
  properties: {
    value: alertWebhookUrl
    contentType: 'text/uri-list'
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
