// Nothing dies silently (issue 16): log search alert rules over the broker's log lines in Application
// Insights, mailing one action group. The broker writes one JSON object per line to the console
// (src/lib/logger.ts: {"level", "event", ...fields}); the Functions host stores each line in the
// `traces` table with the JSON as `message`, so every query parses `message`. docs/alerts.md shows
// each rule, its query and how to test it.
import { tagsType } from '../types.bicep'

@description('Base of the action group and rule names.')
param name string
param location string
param tags tagsType = {}
param applicationInsightsName string

@description('E-mail addresses mailed when a rule fires.')
param emailAddresses string[] = []

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${name}'
  // Action groups are global resources.
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'tokenbroker'
    enabled: true
    emailReceivers: [
      for (address, i) in emailAddresses: {
        name: 'email-${i}'
        emailAddress: address
        useCommonAlertSchema: true
      }
    ]
  }
}

// Each query starts the same way: `e` is the broker's JSON line, parsed from the trace's message.
// Plain strings, not interpolated, so the compiled template (and its test) carries the queries as text.
var rules = [
  {
    key: 'needs-consent'
    displayName: 'Token broker: a connection needs consent'
    description: 'A connection changed to needs_consent (connection.state_changed, to=needs_consent): its grant is dead; a person must reconnect it (status page, remedy).'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    query: 'traces | extend e = parse_json(message) | where tostring(e.event) == "connection.state_changed" and tostring(e.to) == "needs_consent" | summarize count() by connection = tostring(e.connection), reason = tostring(e.reason)'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'client-misconfigured'
    displayName: 'Token broker: the provider rejects a client'
    description: 'A connection changed to client_misconfigured (connection.state_changed, to=client_misconfigured): client secret expired or wrong, app registration deleted or changed.'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    query: 'traces | extend e = parse_json(message) | where tostring(e.event) == "connection.state_changed" and tostring(e.to) == "client_misconfigured" | summarize count() by connection = tostring(e.connection), reason = tostring(e.reason)'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'deadline-approaching'
    displayName: 'Token broker: a deadline is near'
    description: 'deadline.approaching: refresh-token inactivity, ACS hard expiry or a client secret expiry within WARN_BEFORE (logged once a day per deadline).'
    severity: 2
    frequency: 'PT1H'
    window: 'PT1H'
    query: 'traces | extend e = parse_json(message) | where tostring(e.event) == "deadline.approaching" | summarize count() by connection = tostring(e.connection), kind = tostring(e.kind)'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'rotation-transient'
    displayName: 'Token broker: rotation failing transiently for over an hour'
    description: 'Every rotation.pass of the last hour had transient > 0: a provider, Key Vault or the lock storage has been failing for an hour.'
    severity: 2
    frequency: 'PT15M'
    window: 'PT1H'
    query: 'traces | extend e = parse_json(message) | where tostring(e.event) == "rotation.pass" | summarize passes = count(), failing = countif(toint(e.transient) > 0) | where passes > 0 and failing == passes'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'lease-lost'
    displayName: 'Token broker: a refresh lease was lost'
    description: 'lock.lease_lost: a refresh ran past its blob lease (storage unreachable or too slow); another instance may redeem the same refresh token.'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    query: 'traces | extend e = parse_json(message) | where tostring(e.event) == "lock.lease_lost" | summarize count() by connection = tostring(e.connection), reason = tostring(e.reason)'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'rotation-missing'
    displayName: 'Token broker: no rotation pass for 30 minutes'
    description: 'No rotation.pass line for 30 minutes: the timer is not running (app stopped, host failing to start, schedule changed).'
    severity: 1
    frequency: 'PT10M'
    window: 'PT30M'
    query: 'traces | extend e = parse_json(message) | where tostring(e.event) == "rotation.pass"'
    operator: 'LessThan'
    threshold: 1
  }
]

resource queryRules 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = [
  for rule in rules: {
    name: 'alert-${name}-${rule.key}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [
        applicationInsights.id
      ]
      evaluationFrequency: rule.frequency
      windowSize: rule.window
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Count'
            operator: rule.operator
            threshold: rule.threshold
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      // Stateful: one notification when a rule starts firing, resolved when its condition clears.
      autoMitigate: true
      actions: {
        actionGroups: [
          actionGroup.id
        ]
      }
    }
  }
]

output actionGroupId string = actionGroup.id
output ruleNames string[] = [for (rule, i) in rules: queryRules[i].name]
