import { type Broker, createDeclaredBroker } from '../lib/broker.js';
import { ConnectionCatalog } from '../lib/config/catalog.js';
import { loadConnections } from '../lib/config/load.js';
import { loadSettings } from '../lib/config/settings.js';
import { BrokerError } from '../lib/errors.js';
import { createLogger } from '../lib/logger.js';
import { SECRET_NAME } from '../lib/store/limits.js';
import { runCheck } from './check.js';
import { connectCommand } from './connect.js';
import { DEFINITIONS_USAGE, definitionsCommand, inviteCommand } from './definitions.js';

const USAGE = `usage: broker <command>
  secrets set NAME     store a client secret read from stdin (never from the command line)
  import ID [--replace]  store a refresh token read from stdin, after redeeming it once to prove it works
                       (--replace: it may belong to another account than the one connected)
  connect ID           connect a device-code connection: sign in with the printed code on any device
  rotate [ID]          run one rotation pass now (all connections, or one; ID forces it)
  status               every connection's health
  callers ID           the services that may get a connection's tokens (CALLER_AUTH=entra)
  check                verify the settings, and that the secret store is reachable and writable
${DEFINITIONS_USAGE}`;

/** Reads a whole value from stdin; a person at a terminal is told how to end it. */
async function readStdin(what: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(`Paste the ${what}, then press Enter and Ctrl-D:\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const value = Buffer.concat(chunks).toString('utf8').trim();
  if (!value) throw new BrokerError('invalid_request', `No ${what} on stdin.`);
  return value;
}

async function openBroker(): Promise<Broker> {
  const settings = loadSettings(process.env);
  // Log lines go to stderr so stdout stays the command's answer.
  const logger = createLogger((_level, line) => process.stderr.write(`${line}\n`), 'warn');
  return createDeclaredBroker(settings, { logger });
}

/** What tests inject: a broker built elsewhere (e.g. an e2e stack's) and a sleep that moves a manual clock. */
export interface CliDeps {
  openBroker?: () => Promise<Broker>;
  sleep?: (ms: number) => Promise<void>;
  /** `connections` / `templates`: the environment (default `process.env`), fetch, the error lines. */
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
  err?: (line: string) => void;
}

export async function runCli(
  argv: string[],
  out: (line: string) => void = console.log,
  deps: CliDeps = {},
): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'secrets': {
      const [sub, name, ...rest] = args;
      if (rest.length > 0) {
        out(
          'broker: the secret value is read from stdin, never from the command line (it would stay in shell history).',
        );
        return 2;
      }
      if (sub !== 'set' || !name || !SECRET_NAME.test(name)) {
        out('usage: broker secrets set NAME   (NAME: letters, digits, dashes; the value comes from stdin)');
        return 2;
      }
      const broker = await openBroker();
      const value = await readStdin(`value of secret ${name}`);
      const props = await broker.store.setSecret(name, value);
      out(`Stored secret ${name} (version ${props.version}) in the ${broker.store.kind} store.`);
      return 0;
    }
    case 'import': {
      const replace = args.includes('--replace');
      const [id, ...rest] = args.filter((a) => a !== '--replace');
      if (!id || rest.length > 0) {
        out('usage: broker import ID [--replace]   (the refresh token comes from stdin)');
        return 2;
      }
      const broker = await (deps.openBroker ?? openBroker)();
      const connection = await broker.connections.get(id);
      const token = await readStdin('refresh token');
      const tags = await broker.grants.importRefreshToken(connection, token, replace);
      out(`Imported: connection ${id} is connected${tags.account ? ` as ${tags.account}` : ''}.`);
      return 0;
    }
    case 'connect': {
      const [id] = args;
      if (!id) {
        out('usage: broker connect ID   (a connection with "flow": "device_code")');
        return 2;
      }
      const broker = await (deps.openBroker ?? openBroker)();
      return connectCommand(broker, id, out, { sleep: deps.sleep });
    }
    case 'rotate': {
      const [id] = args;
      const broker = await openBroker();
      if (id) await broker.connections.get(id);
      const results = await broker.rotation.rotationPass({ onlyId: id, force: id !== undefined });
      for (const r of results) out([r.connection, r.outcome, r.reason ?? r.error ?? ''].join('\t').trimEnd());
      return results.some((r) => r.outcome !== 'rotated' && r.outcome !== 'skipped') ? 1 : 0;
    }
    case 'status': {
      const broker = await (deps.openBroker ?? openBroker)();
      for (const c of await broker.status.health()) {
        out(
          [c.id, c.status, c.account ?? '-', `refreshed ${c.refreshedAt ?? '-'}`, c.lastError ?? '']
            .join('\t')
            .trimEnd(),
        );
        if (c.remedy) out(`  ${c.remedy.kind}: ${c.remedy.text}`);
      }
      return 0;
    }
    case 'check':
      return runCheck({ out });
    case 'connections':
    case 'templates':
    case 'invite': {
      const adminDeps = {
        openBroker: deps.openBroker ?? openBroker,
        readStdin,
        env: deps.env ?? process.env,
        fetch: deps.fetch,
        err: deps.err ?? ((line: string) => process.stderr.write(`${line}\n`)),
      };
      if (command === 'invite') return inviteCommand(args, out, adminDeps);
      return definitionsCommand(command === 'connections' ? 'connection' : 'template', args, out, adminDeps);
    }
    case 'callers': {
      const [id] = args;
      if (!id) {
        out('usage: broker callers ID');
        return 2;
      }
      const settings = loadSettings(process.env);
      const connection = await new ConnectionCatalog(loadConnections(settings).connections.values()).get(id);
      if (settings.callerAuth.mode === 'key')
        out(
          '# CALLER_AUTH=key: anyone with the function key may call; this list applies under CALLER_AUTH=entra',
        );
      if (!connection.callers?.length)
        out(`# connection ${id} lists no callers: under CALLER_AUTH=entra nobody may get its tokens`);
      for (const c of connection.callers ?? []) out(`${c.name}\t${c.objectId}`);
      return 0;
    }
    default:
      out(USAGE);
      return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  }
}
