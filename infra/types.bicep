// Types shared by main.bicep and its modules (bicepconfig.json raises use-user-defined-types).

@export()
@description('Resource tags: names to strings.')
type tagsType = {
  *: string
}

@export()
@description('One connection of connections.json. Only what the template itself reads is typed here; every other field (flow, tenant, credential, scopes, callers…) passes through as it is, and the broker validates the whole connection at start-up against connections.schema.json.')
type connectionType = {
  provider: 'entra' | 'sharepoint-acs' | 'oauth2'
}

@export()
@description('The content of connections.json as an object: {"connections": {"<id>": {…}}}. Empty: no connections.')
type connectionsFileType = {
  connections: {
    *: connectionType
  }?
}

