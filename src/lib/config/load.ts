import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { type Connection, type ConnectionConfig, connectionsFileSchema } from './connections.js';
import { parseDuration } from './duration.js';
import type { Settings } from './settings.js';

export interface LoadedConnections {
  connections: Map<string, Connection>;
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
      connections: parseConnections(settings.connectionsInline, 'BROKER_CONNECTIONS', settings),
      source: 'BROKER_CONNECTIONS',
    };
  }
  const path = resolve(cwd, settings.connectionsFile ?? 'connections.json');
  if (!existsSync(path)) {
    if (settings.connectionsFile !== undefined)
      throw new ConfigError(`BROKER_CONNECTIONS_FILE ${path} does not exist`);
    return { connections: new Map(), source: 'none' };
  }
  return { connections: parseConnections(readFileSync(path, 'utf8'), path, settings), source: path };
}

export function parseConnections(
  text: string,
  origin: string,
  settings: Pick<Settings, 'publicUrl'>,
): Map<string, Connection> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${origin}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = connectionsFileSchema.safeParse(json);
  if (!parsed.success)
    throw new ConfigError(`${origin}: invalid connections:\n  ${describeIssues(parsed.error).join('\n  ')}`);
  const connections = new Map<string, Connection>();
  for (const [id, config] of Object.entries(parsed.data.connections)) {
    connections.set(id, resolveConnection(id, config, settings));
  }
  return connections;
}

export function resolveConnection(
  id: string,
  config: ConnectionConfig,
  settings: Pick<Settings, 'publicUrl'>,
): Connection {
  return {
    ...config,
    id,
    redirectUri: config.redirectUri ?? `${settings.publicUrl}/api/callback`,
    rotateAfterMs: parseDuration(config.rotateAfter)!,
  };
}

/** `connection "support": field "tenant": …`, naming the connection and the field. */
function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const [root, id, ...field] = issue.path.map(String);
    if (issue.code === 'invalid_key') {
      return `connection "${id}": connection ids are lowercase letters, digits and dashes (at most 63)`;
    }
    if (root === 'connections' && id !== undefined) {
      return field.length > 0
        ? `connection "${id}": field "${field.join('.')}": ${issue.message}`
        : `connection "${id}": ${issue.message}`;
    }
    return `${issue.path.length > 0 ? `field "${issue.path.join('.')}": ` : ''}${issue.message}`;
  });
}
