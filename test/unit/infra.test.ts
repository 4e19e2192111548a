// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are Bicep and azd syntax, not templates
// Checks infra/*.bicep, infra/main.parameters.json and azure.yaml as text: no Bicep compiler is
// installable here, so this test is both the policy check (settings, roles, hardening, no secrets)
// and a small structural lint (balanced brackets, declared identifiers, module params and outputs).
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

// ---------------------------------------------------------------------------------------------
// A Bicep reader: just enough to find declarations, blocks and expressions without a compiler.

type Token =
  | { kind: 'ident'; text: string; at: number }
  | { kind: 'string'; text: string; holes: Token[][]; at: number }
  | { kind: 'number'; text: string; at: number }
  | { kind: 'punct'; text: string; at: number }
  | { kind: 'newline'; text: '\n'; at: number };

/** Tokenizes Bicep (comments dropped, string interpolations tokenized recursively). */
function tokenize(src: string, start = 0, stopAtBrace = false): { tokens: Token[]; end: number } {
  const tokens: Token[] = [];
  let i = start;
  let depth = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      tokens.push({ kind: 'newline', text: '\n', at: i });
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (src.startsWith('//', i)) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (src.startsWith('/*', i)) {
      const close = src.indexOf('*/', i + 2);
      if (close < 0) throw new Error(`unclosed comment at ${i}`);
      i = close + 2;
    } else if (c === "'") {
      const at = i;
      let text = '';
      const holes: Token[][] = [];
      i++;
      for (;;) {
        if (i >= src.length) throw new Error(`unclosed string at ${at}`);
        const d = src[i]!;
        if (d === '\\') {
          text += src[i + 1];
          i += 2;
        } else if (d === "'") {
          i++;
          break;
        } else if (d === '\n') {
          throw new Error(`newline in string at ${at}`);
        } else if (src.startsWith('${', i)) {
          const inner = tokenize(src, i + 2, true);
          holes.push(inner.tokens);
          text += '${…}';
          i = inner.end + 1;
        } else {
          text += d;
          i++;
        }
      }
      tokens.push({ kind: 'string', text, holes, at });
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      tokens.push({ kind: 'ident', text: m[0], at: i });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+/.exec(src.slice(i))!;
      tokens.push({ kind: 'number', text: m[0], at: i });
      i += m[0].length;
    } else {
      const two = src.slice(i, i + 2);
      const op = ['==', '!=', '&&', '||', '>=', '<=', '?.', '.?', '??'].includes(two) ? two : c;
      if (stopAtBrace && op === '}' && depth === 0) return { tokens, end: i };
      if (op === '{') depth++;
      if (op === '}') depth--;
      tokens.push({ kind: 'punct', text: op, at: i });
      i += op.length;
    }
  }
  if (stopAtBrace) throw new Error(`unclosed interpolation at ${start}`);
  return { tokens, end: i };
}

interface Param {
  name: string;
  type: string;
  hasDefault: boolean;
}

interface Declaration {
  keyword: 'resource' | 'module';
  symbol: string;
  /** Resource type (without api version), or module path. */
  target: string;
  apiVersion?: string;
  existing: boolean;
  condition?: string;
  /** Source text of the declaration's `{ … }` body. */
  body: string;
}

class BicepFile {
  readonly tokens: Token[];
  readonly text: string;

  constructor(
    readonly path: string,
    readonly source: string,
  ) {
    this.tokens = tokenize(source).tokens;
    // Source with comments blanked out (same offsets), for the regex-based readers below.
    this.text = blankComments(source);
  }

  get params(): Param[] {
    return [...this.text.matchAll(/^param (\w+) (\w+)( =)?/gm)].map((m) => ({
      name: m[1]!,
      type: m[2]!,
      hasDefault: m[3] !== undefined,
    }));
  }

  get outputs(): { name: string; type: string; expression: string }[] {
    return [...this.text.matchAll(/^output (\w+) (\w+) = (.+)$/gm)].map((m) => ({
      name: m[1]!,
      type: m[2]!,
      expression: m[3]!.trim(),
    }));
  }

  get declarations(): Declaration[] {
    const found: Declaration[] = [];
    const re = /^(resource|module) (\w+) '([^']+)'( existing)? = (?:if \((.*)\) )?(\{|\[)/gm;
    for (const m of this.text.matchAll(re)) {
      const open = m.index + m[0].length - 1;
      const body = this.text.slice(open, matchingClose(this.text, open) + 1);
      const [target, apiVersion] = m[1] === 'resource' ? m[3]!.split('@') : [m[3]!, undefined];
      found.push({
        keyword: m[1] as 'resource' | 'module',
        symbol: m[2]!,
        target: target!,
        apiVersion,
        existing: m[4] !== undefined,
        condition: m[5],
        body,
      });
    }
    return found;
  }

  resource(symbol: string): Declaration {
    const d = this.declarations.find((x) => x.symbol === symbol);
    if (!d) throw new Error(`${this.path}: no declaration ${symbol}`);
    return d;
  }

  /** The value of `var name = …` (single line or a `{ … }` block). */
  variable(name: string): string {
    const m = new RegExp(`^var ${name} = (.*)$`, 'm').exec(this.text);
    if (!m) throw new Error(`${this.path}: no var ${name}`);
    if (m[1]!.trim() !== '{') return m[1]!.trim();
    const open = m.index + m[0].length - 1;
    return this.text.slice(open, matchingClose(this.text, open) + 1);
  }
}

function blankComments(src: string): string {
  let out = '';
  let i = 0;
  let inString = false;
  while (i < src.length) {
    const c = src[i]!;
    if (inString) {
      out += c;
      if (c === '\\') {
        out += src[i + 1] ?? '';
        i += 2;
        continue;
      }
      if (c === "'") inString = false;
      i++;
    } else if (c === "'") {
      inString = true;
      out += c;
      i++;
    } else if (src.startsWith('//', i)) {
      while (i < src.length && src[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Index of the bracket closing the one at `open` (strings skipped). */
function matchingClose(text: string, open: number): number {
  const pairs: Record<string, string> = { '{': '}', '[': ']', '(': ')' };
  const stack: string[] = [];
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === "'") inString = false;
      continue;
    }
    if (c === "'") inString = true;
    else if (pairs[c]) stack.push(pairs[c]!);
    else if (c === '}' || c === ']' || c === ')') {
      if (stack.pop() !== c) throw new Error(`unbalanced ${c} at ${i}`);
      if (stack.length === 0) return i;
    }
  }
  throw new Error(`no closing bracket for ${text[open]} at ${open}`);
}

/** `key: value` entries directly inside a `{ … }` block (values may span lines). */
function entries(block: string): Map<string, string> {
  const result = new Map<string, string>();
  const inner = block.slice(1, -1);
  let i = 0;
  while (i < inner.length) {
    const m = /^\s*(?:'([^']+)'|(\w+))\s*:\s*/.exec(inner.slice(i));
    if (!m) {
      const nl = inner.indexOf('\n', i);
      i = nl < 0 ? inner.length : nl + 1;
      continue;
    }
    let j = i + m[0].length;
    const valueStart = j;
    while (j < inner.length && inner[j] !== '\n') {
      const c = inner[j]!;
      if (c === '{' || c === '[' || c === '(') j = matchingClose(inner, j) + 1;
      else if (c === "'") j = endOfString(inner, j) + 1;
      else j++;
    }
    result.set(m[1] ?? m[2]!, inner.slice(valueStart, j).trim());
    i = j + 1;
  }
  return result;
}

function endOfString(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === "'") return i;
  }
  throw new Error(`unclosed string at ${open}`);
}

/** The `{ … }` value of `key:` inside a block. */
function objectAt(block: string, key: string): string {
  const value = entries(block).get(key);
  if (!value?.startsWith('{')) throw new Error(`no object ${key}`);
  return value;
}

function stringLiterals(tokens: Token[]): { text: string; holes: Token[][] }[] {
  return tokens.filter((t) => t.kind === 'string');
}

// ---------------------------------------------------------------------------------------------

const infraFiles = [
  'infra/main.bicep',
  ...readdirSync(join(root, 'infra/modules')).map((f) => `infra/modules/${f}`),
]
  .filter((f) => f.endsWith('.bicep'))
  .map((f) => new BicepFile(f, read(f)));
const file = (path: string) => {
  const f = infraFiles.find((x) => x.path === path);
  if (!f) throw new Error(`missing ${path}`);
  return f;
};
const main = file('infra/main.bicep');
const functionApp = file('infra/modules/function-app.bicep');
const roles = file('infra/modules/role-assignments.bicep');
const appSettings = entries(objectAt(functionApp.resource('appSettings').body, 'properties'));

/** Setting names the broker's zod schema reads (src/lib/config/settings.ts), from the source text. */
function schemaSettingNames(): string[] {
  const text = read('src/lib/config/settings.ts');
  const start = text.indexOf('const settingsSchema = z.object({');
  const end = text.indexOf('\n});', start);
  expect(start).toBeGreaterThan(-1);
  return [...text.slice(start, end).matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!);
}

/** Read by the broker and set in Azure by the template. */
const SET_IN_AZURE = [
  'KEY_VAULT_URL',
  'BROKER_PUBLIC_URL',
  'BROKER_CONNECTIONS',
  'ROTATION_SCHEDULE',
  'REFRESH_AHEAD',
  'ROTATION_CONCURRENCY',
  'WARN_BEFORE',
  'REFRESH_LOCK',
];
/** Read by the broker but meaningless (or platform-set) in Azure: deliberately not in the template. */
const NOT_FOR_AZURE: Record<string, string> = {
  PORT: 'embedded local host only',
  BROKER_FUNCTION_KEY: 'embedded local host only; Azure Functions keys guard the routes',
  BROKER_DATA_DIR: 'embedded file store only; Azure uses Key Vault',
  BROKER_CONNECTIONS_FILE: 'the package ships no connections file; BROKER_CONNECTIONS is used',
  WEBSITE_HOSTNAME: 'set by the platform',
  // Optional, and a credential (a Teams or Slack webhook URL is one): set per deployment, e.g. as a Key
  // Vault reference, not in the template (issue 16; infra/ belongs to the alert-rules work).
  ALERT_WEBHOOK_URL: 'optional credential, set per deployment',
};
/** Platform settings the template must set for an identity-only Function App. */
const PLATFORM_SETTINGS = [
  'AZURE_CLIENT_ID',
  'AzureWebJobsStorage__accountName',
  'AzureWebJobsStorage__credential',
  'AzureWebJobsStorage__clientId',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
];

const ROLE = {
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
};

/** Words that must not name an output or a setting, nor appear in a setting's literal value. */
const SECRETISH =
  /secret|passw|pwd|token|connectionstring|connection_string|accountkey|account_key|instrumentationkey|sharedaccess|\bsas\b|sig=|apikey|api_key|privatekey|listkeys|listsecrets/i;

describe('infra: app settings', () => {
  it('classifies every setting of the broker schema as set in Azure or deliberately not', () => {
    const names = schemaSettingNames();
    expect(names.length).toBeGreaterThanOrEqual(11);
    const unclassified = names.filter((n) => !SET_IN_AZURE.includes(n) && !(n in NOT_FOR_AZURE));
    expect(unclassified, 'new setting in settings.ts: set it in infra or list it in NOT_FOR_AZURE').toEqual(
      [],
    );
    expect(
      SET_IN_AZURE.filter((n) => !names.includes(n)),
      'stale entries in SET_IN_AZURE',
    ).toEqual([]);
  });

  it('sets every Azure-relevant broker setting and the identity-based platform settings', () => {
    for (const name of [...SET_IN_AZURE, ...PLATFORM_SETTINGS])
      expect(appSettings.has(name), name).toBe(true);
    for (const name of Object.keys(NOT_FOR_AZURE)) expect(appSettings.has(name), name).toBe(false);
  });

  it('points the settings at the identity, the vault and the site itself', () => {
    expect(appSettings.get('AZURE_CLIENT_ID')).toBe('identityClientId');
    expect(appSettings.get('AzureWebJobsStorage__clientId')).toBe('identityClientId');
    expect(appSettings.get('AzureWebJobsStorage__credential')).toBe("'managedidentity'");
    expect(appSettings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')).toBe(
      "'Authorization=AAD;ClientId=${identityClientId}'",
    );
    expect(appSettings.get('APPLICATIONINSIGHTS_CONNECTION_STRING')).toBe(
      'applicationInsights.properties.ConnectionString',
    );
    expect(appSettings.get('KEY_VAULT_URL')).toBe('keyVaultUri');
    expect(appSettings.get('BROKER_PUBLIC_URL')).toBe("'https://${site.properties.defaultHostName}'");
  });

  it('sets no Flex-Consumption-incompatible or key-based setting', () => {
    for (const name of [
      'FUNCTIONS_WORKER_RUNTIME',
      'FUNCTIONS_EXTENSION_VERSION',
      'WEBSITE_RUN_FROM_PACKAGE',
      'WEBSITE_NODE_DEFAULT_VERSION',
      'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
      'AzureWebJobsStorage',
      'APPINSIGHTS_INSTRUMENTATIONKEY',
    ]) {
      expect(appSettings.has(name), name).toBe(false);
    }
    expect(functionApp.text).not.toMatch(/linuxFxVersion|FUNCTIONS_WORKER_RUNTIME/);
  });

  it('carries no secret in a setting name or literal value', () => {
    for (const [name, value] of appSettings) {
      if (name !== 'APPLICATIONINSIGHTS_CONNECTION_STRING') expect(name, name).not.toMatch(SECRETISH);
      for (const s of stringLiterals(tokenize(value).tokens)) {
        expect(s.text, `${name}: ${s.text}`).not.toMatch(SECRETISH);
        expect(s.text, `${name}: ${s.text}`).toMatch(
          /^(managedidentity|Authorization=AAD;ClientId=\$\{…\}|https:\/\/\$\{…\}|)$/,
        );
      }
    }
  });
});

describe('infra: roles', () => {
  const roleVar = entries(roles.variable('roles'));
  const assignments = roles.declarations.filter(
    (d) => d.target === 'Microsoft.Authorization/roleAssignments',
  );
  const scopeType = (symbol: string) => roles.resource(symbol).target;
  const describeAssignment = (d: Declaration) => {
    const body = entries(d.body);
    const props = entries(objectAt(d.body, 'properties'));
    const roleKey = /roles\.(\w+)\)$/.exec(props.get('roleDefinitionId') ?? '')?.[1] ?? '';
    return {
      symbol: d.symbol,
      scope: scopeType(body.get('scope') ?? ''),
      principal: props.get('principalId'),
      principalType: props.get('principalType'),
      role: roleVar.get(roleKey)?.replaceAll("'", ''),
      name: body.get('name'),
      roleKey,
      scopeSymbol: body.get('scope'),
      condition: d.condition,
    };
  };

  it('uses exactly the three built-in role definitions, with their real GUIDs', () => {
    expect([...roleVar.values()].map((v) => v.replaceAll("'", '')).sort()).toEqual(
      Object.values(ROLE).sort(),
    );
    const guids = new Set(
      infraFiles.flatMap((f) =>
        [...f.text.matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi)].map(
          (m) => m[0],
        ),
      ),
    );
    expect([...guids].sort()).toEqual(Object.values(ROLE).sort());
  });

  it('grants the identity exactly its three roles, each on one resource, and the deployer only Secrets Officer', () => {
    const all = assignments.map(describeAssignment);
    const identity = all
      .filter((a) => a.principal === 'identityPrincipalId')
      .map((a) => [a.role, a.scope, a.principalType]);
    expect(identity.sort()).toEqual(
      [
        [ROLE.storageBlobDataOwner, 'Microsoft.Storage/storageAccounts', "'ServicePrincipal'"],
        [ROLE.keyVaultSecretsOfficer, 'Microsoft.KeyVault/vaults', "'ServicePrincipal'"],
        [ROLE.monitoringMetricsPublisher, 'Microsoft.Insights/components', "'ServicePrincipal'"],
      ].sort(),
    );
    const deployer = all.filter((a) => a.principal !== 'identityPrincipalId');
    expect(deployer).toHaveLength(1);
    expect(deployer[0]).toMatchObject({
      principal: 'deployerPrincipalId',
      principalType: 'deployerPrincipalType',
      role: ROLE.keyVaultSecretsOfficer,
      scope: 'Microsoft.KeyVault/vaults',
      condition: '!empty(deployerPrincipalId)',
    });
    // Nothing at resource group or subscription scope.
    expect(all.every((a) => a.scopeSymbol !== undefined)).toBe(true);
    expect(
      infraFiles.filter((f) => f !== roles && f.text.includes('Microsoft.Authorization/roleAssignments')),
    ).toEqual([]);
  });

  it('names each assignment guid(scope.id, principalId, roleId)', () => {
    for (const a of assignments.map(describeAssignment)) {
      expect(a.name, a.symbol).toBe(`guid(${a.scopeSymbol}.id, ${a.principal}, roles.${a.roleKey})`);
    }
  });

  it('passes the deployer only when the parameter asks for it', () => {
    const params = entries(objectAt(main.resource('roles').body, 'params'));
    expect(params.get('deployerPrincipalId')).toBe("grantDeployerSecretsOfficer ? principalId : ''");
    expect(main.params.find((p) => p.name === 'grantDeployerSecretsOfficer')).toMatchObject({ type: 'bool' });
    expect(main.text).toMatch(/^param grantDeployerSecretsOfficer bool = true$/m);
  });
});

describe('infra: hardening', () => {
  const site = functionApp.resource('site');
  const siteProps = objectAt(site.body, 'properties');
  const flex = objectAt(siteProps, 'functionAppConfig');

  it('runs the Function App on Flex Consumption, Node 22, with the identity and azd tag', () => {
    const plan = entries(objectAt(functionApp.resource('plan').body, 'sku'));
    expect(plan.get('name')).toBe("'FC1'");
    expect(plan.get('tier')).toBe("'FlexConsumption'");
    expect(entries(objectAt(flex, 'runtime'))).toEqual(
      new Map([
        ['name', "'node'"],
        ['version', "'22'"],
      ]),
    );
    const scale = entries(objectAt(flex, 'scaleAndConcurrency'));
    expect(scale.get('instanceMemoryMB')).toBe('instanceMemoryMB');
    expect(scale.get('maximumInstanceCount')).toBe('maximumInstanceCount');
    const storage = objectAt(objectAt(flex, 'deployment'), 'storage');
    expect(entries(objectAt(storage, 'authentication')).get('type')).toBe("'UserAssignedIdentity'");
    expect(entries(site.body).get('kind')).toBe("'functionapp,linux'");
    expect(entries(objectAt(site.body, 'identity')).get('type')).toBe("'UserAssigned'");
    expect(site.body).toContain("'azd-service-name': serviceName");
    expect(entries(objectAt(main.resource('functionApp').body, 'params')).get('serviceName')).toBe("'api'");
  });

  it('is HTTPS only with TLS 1.2 and no FTP or basic publishing credentials', () => {
    expect(entries(siteProps).get('httpsOnly')).toBe('true');
    const siteConfig = entries(objectAt(siteProps, 'siteConfig'));
    expect(siteConfig.get('minTlsVersion')).toBe("'1.2'");
    expect(siteConfig.get('scmMinTlsVersion')).toBe("'1.2'");
    expect(siteConfig.get('ftpsState')).toBe("'Disabled'");
    const policies = functionApp.declarations.filter(
      (d) => d.target === 'Microsoft.Web/sites/basicPublishingCredentialsPolicies',
    );
    expect(policies.map((p) => entries(p.body).get('name')).sort()).toEqual(["'ftp'", "'scm'"]);
    for (const p of policies) expect(entries(objectAt(p.body, 'properties')).get('allow')).toBe('false');
  });

  it('keeps the host storage Entra-only: no shared keys, no public blobs, TLS 1.2', () => {
    const props = entries(
      objectAt(file('infra/modules/storage.bicep').resource('storage').body, 'properties'),
    );
    expect(props.get('allowSharedKeyAccess')).toBe('false');
    expect(props.get('allowBlobPublicAccess')).toBe('false');
    expect(props.get('minimumTlsVersion')).toBe("'TLS1_2'");
    expect(props.get('supportsHttpsTrafficOnly')).toBe('true');
    expect(props.get('defaultToOAuthAuthentication')).toBe('true');
    expect(main.text).toContain("'broker-locks'");
  });

  it('makes the vault RBAC-only with soft delete and purge protection', () => {
    const kv = file('infra/modules/keyvault.bicep');
    const props = entries(objectAt(kv.resource('vault').body, 'properties'));
    expect(props.get('enableRbacAuthorization')).toBe('true');
    expect(props.get('enableSoftDelete')).toBe('true');
    expect(props.get('enablePurgeProtection')).toBe('true');
    expect(props.get('publicNetworkAccess')).toBe('publicNetworkAccess');
    expect(kv.text).not.toMatch(/accessPolicies/);
    const params = entries(objectAt(main.resource('keyVault').body, 'params'));
    expect(params.get('publicNetworkAccess')).toBe('keyVaultPublicNetworkAccess');
  });

  it('turns local authentication off for Application Insights and Log Analytics', () => {
    const monitoring = file('infra/modules/monitoring.bicep');
    const ai = entries(objectAt(monitoring.resource('applicationInsights').body, 'properties'));
    expect(ai.get('DisableLocalAuth')).toBe('true');
    expect(ai.get('WorkspaceResourceId')).toBe('logAnalytics.id');
    const la = objectAt(monitoring.resource('logAnalytics').body, 'properties');
    expect(entries(objectAt(la, 'features')).get('disableLocalAuth')).toBe('true');
  });

  it('has no key listing, key-based connection string or secure parameter anywhere', () => {
    for (const f of infraFiles) {
      expect(f.text, f.path).not.toMatch(
        /listKeys|listSecrets|AccountKey=|SharedAccessSignature|@secure\(\)/,
      );
      expect(f.text, f.path).not.toMatch(/Microsoft\.KeyVault\/vaults\/secrets/);
    }
  });
});

describe('infra: outputs', () => {
  it('outputs the URLs, callback URL and vault name and URI', () => {
    const outputs = new Map(main.outputs.map((o) => [o.name, o.expression]));
    expect(outputs.get('BROKER_URL')).toBe('functionApp.outputs.url');
    expect(outputs.get('BROKER_CALLBACK_URL')).toBe("'${functionApp.outputs.url}/api/callback'");
    expect(outputs.get('KEY_VAULT_NAME')).toBe('keyVault.outputs.name');
    expect(outputs.get('KEY_VAULT_URL')).toBe('keyVault.outputs.uri');
    expect(outputs.get('SERVICE_API_NAME')).toBe('functionApp.outputs.name');
  });

  it('carries no secret in any output of any file', () => {
    for (const f of infraFiles) {
      for (const o of f.outputs) {
        expect(o.name, `${f.path} ${o.name}`).not.toMatch(SECRETISH);
        expect(o.expression, `${f.path} ${o.name}`).not.toMatch(
          /ConnectionString|InstrumentationKey|secret|list\w*\(/i,
        );
      }
    }
  });
});

describe('infra: structure (what a compiler would catch)', () => {
  const FUNCTIONS = new Set([
    'any',
    'bool',
    'concat',
    'contains',
    'deployer',
    'deployment',
    'empty',
    'endsWith',
    'environment',
    'first',
    'format',
    'guid',
    'int',
    'json',
    'last',
    'length',
    'loadJsonContent',
    'loadTextContent',
    'managementGroup',
    'replace',
    'resourceGroup',
    'resourceId',
    'split',
    'startsWith',
    'string',
    'subscription',
    'subscriptionResourceId',
    'substring',
    'take',
    'tenant',
    'tenantResourceId',
    'toLower',
    'toUpper',
    'trim',
    'union',
    'uniqueString',
    'uri',
    'allowed',
    'description',
    'metadata',
    'minLength',
    'maxLength',
    'minValue',
    'maxValue',
    'batchSize',
    'sys',
  ]);
  const KEYWORDS = new Set([
    'param',
    'var',
    'output',
    'resource',
    'module',
    'existing',
    'if',
    'for',
    'in',
    'true',
    'false',
    'null',
    'targetScope',
    'string',
    'int',
    'bool',
    'object',
    'array',
  ]);

  it.each(infraFiles.map((f) => [f.path, f] as const))(
    '%s: balanced, no trailing commas, api versions',
    (_, f) => {
      expect(() => matchingClose(`(${f.text})`, 0)).not.toThrow();
      expect(f.text).not.toMatch(/,\s*\n\s*[}\]]/);
      expect(f.text).not.toMatch(/,\s*\)/);
      for (const d of f.declarations.filter((x) => x.keyword === 'resource')) {
        expect(d.apiVersion, `${d.symbol}`).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      }
    },
  );

  it.each(infraFiles.map((f) => [f.path, f] as const))('%s: every identifier is declared', (_, f) => {
    const declared = new Set<string>();
    const walk = (tokens: Token[], visit: (t: Token, prev?: Token, next?: Token) => void) => {
      tokens.forEach((t, i) => {
        visit(t, tokens[i - 1], tokens[i + 1]);
        if (t.kind === 'string') for (const hole of t.holes) walk(hole, visit);
      });
    };
    walk(f.tokens, (t, prev, next) => {
      if (t.kind !== 'ident' || !prev || prev.kind !== 'ident') return;
      if (['param', 'var', 'output', 'resource', 'module', 'for'].includes(prev.text)) declared.add(t.text);
      if (next?.kind === 'ident' && next.text === 'in' && prev.text === 'for') declared.add(t.text);
    });
    const undeclared: string[] = [];
    walk(f.tokens, (t, prev, next) => {
      if (t.kind !== 'ident') return;
      if (prev?.kind === 'punct' && ['.', '?.', '.?', '@'].includes(prev.text)) return;
      if (next?.kind === 'punct' && next.text === '(') {
        if (!FUNCTIONS.has(t.text) && !KEYWORDS.has(t.text)) undeclared.push(`${t.text}()`);
        return;
      }
      const keyPosition =
        !prev || prev.kind === 'newline' || (prev.kind === 'punct' && ['{', ','].includes(prev.text));
      if (keyPosition && next?.kind === 'punct' && next.text === ':') return;
      if (KEYWORDS.has(t.text) || declared.has(t.text)) return;
      undeclared.push(t.text);
    });
    expect(undeclared).toEqual([]);
  });

  it('passes every module exactly the parameters it declares, and reads only outputs it has', () => {
    for (const f of infraFiles) {
      const modules = f.declarations.filter((d) => d.keyword === 'module');
      for (const m of modules) {
        const target = file(join(f.path, '..', m.target).replaceAll('\\', '/'));
        const passed = [...entries(objectAt(m.body, 'params')).keys()];
        const declared = target.params;
        expect(
          passed.filter((p) => !declared.some((d) => d.name === p)),
          `${m.symbol}: unknown params`,
        ).toEqual([]);
        const missing = declared.filter((d) => !d.hasDefault && !passed.includes(d.name)).map((d) => d.name);
        expect(missing, `${m.symbol}: missing params`).toEqual([]);
        for (const use of f.text.matchAll(new RegExp(`\\b${m.symbol}\\.outputs\\.(\\w+)`, 'g'))) {
          expect(
            target.outputs.map((o) => o.name),
            `${m.symbol}.outputs.${use[1]}`,
          ).toContain(use[1]);
        }
      }
    }
  });
});

describe('azd: parameters and azure.yaml', () => {
  const parameters = JSON.parse(read('infra/main.parameters.json')) as {
    parameters: Record<string, { value: unknown }>;
  };

  it('maps azd environment values to main.bicep parameters, and only to existing ones', () => {
    const names = main.params.map((p) => p.name);
    expect(Object.keys(parameters.parameters).filter((p) => !names.includes(p))).toEqual([]);
    const required = main.params.filter((p) => !p.hasDefault).map((p) => p.name);
    expect(required.filter((p) => !(p in parameters.parameters))).toEqual([]);
    expect(parameters.parameters.environmentName?.value).toBe('${AZURE_ENV_NAME}');
    expect(parameters.parameters.location?.value).toBe('${AZURE_LOCATION}');
    expect(parameters.parameters.principalId?.value).toBe('${AZURE_PRINCIPAL_ID}');
    // An object parameter: azd parses the environment value as JSON, so connections.json needs no escaping.
    expect(parameters.parameters.brokerConnections?.value).toBe('${BROKER_CONNECTIONS}');
    expect(main.params.find((p) => p.name === 'brokerConnections')?.type).toBe('object');
  });

  it('deploys the prebuilt package folder of the api service as it is', () => {
    const yaml = read('azure.yaml');
    expect(yaml).toMatch(/^services:\n {2}api:\n/m);
    expect(yaml).toMatch(/^ {4}host: function$/m);
    expect(yaml).toMatch(/^ {4}project: \.$/m);
    expect(yaml).toMatch(/^ {4}dist: \.deploy$/m);
    expect(yaml).toMatch(/^ {4}remoteBuild: false$/m);
    expect(yaml).toMatch(/^ {6}prepackage:\n(?: {8}.*\n)*? {10}run: npm run package$/m);
  });
});
