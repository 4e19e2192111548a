import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as z from 'zod';
import { ConfigError } from '../errors.js';
import type { TemplateConfig } from './connections.js';
import { CONNECTION_ID, type Connection, type ConnectionConfig, templateSchema } from './connections.js';
import { parseDuration } from './duration.js';
import type { Settings } from './settings.js';
import { checkConnection } from './templates.js';

/** The declared source (DESIGN: "Connections at runtime"): what the file or app setting holds. */
export interface DeclaredConnections {
  connections: Map<string, Connection>;
  /** Each connection's definition as written (before its template), for the admin API's entries. */
  definitions: Map<string, Record<string, unknown>>;
  templates: Map<string, TemplateConfig>;
}

export interface LoadedConnections extends DeclaredConnections {
  /** Where they came from, for start-up lines: a file path, `BROKER_CONNECTIONS`, or `none`. */
  source: string;
}

/**
 * Reads connections from `BROKER_CONNECTIONS` (inline JSON) or the connections file. A missing
 * default file means "none configured"; a missing file that was named explicitly is an error.
 */
export function loadConnections(settings: Settings, cwd = process.cwd()): LoadedConnections {
  if (settings.connectionsInline !== undefined) {
    return {
      ...parseDeclared(settings.connectionsInline, 'BROKER_CONNECTIONS', settings),
      source: 'BROKER_CONNECTIONS',
    };
  }
  const path = resolve(cwd, settings.connectionsFile ?? 'connections.json');
  if (!existsSync(path)) {
    if (settings.connectionsFile !== undefined)
      throw new ConfigError(`BROKER_CONNECTIONS_FILE ${path} does not exist`);
    return { connections: new Map(), definitions: new Map(), templates: new Map(), source: 'none' };
  }
  return { ...parseDeclared(readFileSync(path, 'utf8'), path, settings), source: path };
}

/**
 * The file's outline; each connection is then merged with its template and validated by the one
 * connection schema (`checkConnection`), so a templated and a plain connection meet the same rules.
 */
const declaredFile = z
  .object({
    $schema: z.string().optional(),
    templates: z.record(z.string(), templateSchema).optional(),
    connections: z.record(z.string(), z.unknown()),
  })
  .strict();

export function parseConnections(
  text: string,
  origin: string,
  settings: Pick<Settings, 'publicUrl'>,
): Map<string, Connection> {
  return parseDeclared(text, origin, settings).connections;
}

export function parseDeclared(
  text: string,
  origin: string,
  settings: Pick<Settings, 'publicUrl'>,
): DeclaredConnections {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${origin}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = declaredFile.safeParse(json);
  if (!parsed.success)
    throw new ConfigError(
      `${origin}: invalid connections:\n  ${describeIssues(parsed.error.issues).join('\n  ')}`,
    );
  const issues: z.core.$ZodIssue[] = [];
  const templates = new Map<string, TemplateConfig>();
  for (const [name, template] of Object.entries(parsed.data.templates ?? {})) {
    if (!CONNECTION_ID.test(name)) issues.push(badKey('templates', name));
    templates.set(name, template);
  }
  const connections = new Map<string, Connection>();
  const definitions = new Map<string, Record<string, unknown>>();
  for (const [id, definition] of Object.entries(parsed.data.connections)) {
    if (!CONNECTION_ID.test(id)) {
      issues.push(badKey('connections', id));
      continue;
    }
    const checked = checkConnection(definition, (name) => templates.get(name));
    if (!checked.ok) {
      for (const issue of checked.issues) {
        const path = ['connections', id, ...(issue.path === '' ? [] : issue.path.split('.'))];
        issues.push({ code: 'custom', path, message: issue.message, input: undefined });
      }
      continue;
    }
    definitions.set(id, definition as Record<string, unknown>);
    connections.set(id, resolveConnection(id, checked.value.config, settings, checked.value.template));
  }
  if (issues.length > 0)
    throw new ConfigError(`${origin}: invalid connections:\n  ${describeIssues(issues).join('\n  ')}`);
  return { connections, definitions, templates };
}

function badKey(root: 'connections' | 'templates', key: string): z.core.$ZodIssue {
  return { code: 'invalid_key', origin: 'record', path: [root, key], message: '', issues: [], input: key };
}

export function resolveConnection(
  id: string,
  config: ConnectionConfig,
  settings: Pick<Settings, 'publicUrl'>,
  template?: string,
): Connection {
  // Copied by Object.assign, not spread: past a few shapes a spread site gives every copy a hidden
  // class (map and descriptors) of its own, ~0.6 KB per connection at 100,000; properties added one
  // by one share one transition chain.
  const connection = Object.assign({}, config) as Connection;
  connection.id = id;
  connection.redirectUri = config.redirectUri ?? defaultRedirectUri(settings.publicUrl);
  connection.rotateAfterMs = parseDuration(config.rotateAfter)!;
  if (template !== undefined) connection.template = template;
  return connection;
}

/** One string per public URL, not one per connection. */
let lastRedirect: { publicUrl: string; uri: string } | undefined;
function defaultRedirectUri(publicUrl: string): string {
  if (lastRedirect?.publicUrl !== publicUrl) lastRedirect = { publicUrl, uri: `${publicUrl}/api/callback` };
  return lastRedirect.uri;
}

/** `connection "support": field "tenant": …`, naming the connection and the field. */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const [root, id, ...field] = issue.path.map(String);
    if (issue.code === 'invalid_key') {
      const what = root === 'templates' ? 'template names' : 'connection ids';
      return `${root === 'templates' ? 'template' : 'connection'} "${id}": ${what} are lowercase letters, digits and dashes (at most 63)`;
    }
    if (root === 'templates' && id !== undefined) {
      return `template "${id}": field "${field.join('.')}": ${issue.message}`;
    }
    if (root === 'connections' && id !== undefined) {
      return field.length > 0
        ? `connection "${id}": field "${field.join('.')}": ${issue.message}`
        : `connection "${id}": ${issue.message}`;
    }
    return `${issue.path.length > 0 ? `field "${issue.path.join('.')}": ` : ''}${issue.message}`;
  });
}
