// Log Analytics + workspace-based Application Insights, both with local (key) authentication off:
// telemetry is ingested with the app's managed identity (Monitoring Metrics Publisher).
import { tagsType } from '../types.bicep'

param logAnalyticsName string
param applicationInsightsName string
param location string
param tags tagsType = {}

@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

// The broker's workbook (docs/telemetry.md): tokens served and refused per connection, refresh
// outcomes, connections by status and the nearest deadlines, from the OpenTelemetry metrics the broker
// sends here (customMetrics). Its content is infra/workbooks/broker.workbook.json, as the workbook
// editor exports it ("Advanced editor"), so changes made in the portal can be copied back.
resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID: this one is stable per Application Insights resource.
  name: guid(applicationInsights.id, 'broker-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Token broker (${applicationInsightsName})'
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: loadTextContent('../workbooks/broker.workbook.json')
  }
}

output logAnalyticsName string = logAnalytics.name
output applicationInsightsName string = applicationInsights.name
