import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Broker } from '../lib/broker.js';
import {
  type AdminClient,
  AdminProblem,
  adminAuthorization,
  type DefinitionKind,
  httpAdminClient,
  type InviteBody,
  localAdminClient,
} from './admin-client.js';

export const DEFINITIONS_USAGE = `  connections list [--source declared|managed] [--template T] [--json]
  connections get ID | put ID [--file F] | rm ID
  templates list [--json] | get NAME | put NAME [--file F] | rm NAME
                       managed connections and templates (docs/connections.md); the definition of
                       put comes from --file or stdin. Against the configured store, or a deployed
                       broker with --url URL and --key KEY (or BROKER_FUNCTION_KEY), or with a token
                       of the signed-in Azure account for --scope (or BROKER_API_URI/.default)
  invite ID [--expires P7D] [--note TEXT] [--replace]
                       a link the mailbox's owner consents from (docs/invitations.md), printed once;
                       the same --url/--key/--scope`;

export interface DefinitionsDeps {
  /** The local broker (configured store); opened only when `--url` is absent. */
  openBroker: () => Promise<Broker>;
  /** The definition of `put` when there is no `--file`. */
  readStdin: (what: string) => Promise<string>;
  env: NodeJS.ProcessEnv;
  /** Tests: the client of a deployed broker (default: real HTTP). */
  fetch?: typeof fetch;
  /** Lines for errors (default: the same as `out`). */
  err?: (line: string) => void;
}

/**
 * `broker connections …` / `broker templates …`. Prints the answer on stdout (entries as JSON,
 * lists one per line); a refusal prints `code: detail` and each `errors` path on stderr, exit 1;
 * a usage mistake exit 2.
 */
export async function definitionsCommand(
  kind: DefinitionKind,
  args: string[],
  out: (line: string) => void,
  deps: DefinitionsDeps,
): Promise<number> {
  const err = deps.err ?? out;
  const noun = kind === 'connection' ? 'connection' : 'template';
  const usage = () => {
    err(`usage: broker ${noun}s list|get|put|rm …\n${DEFINITIONS_USAGE}`);
    return 2;
  };
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (e) {
    err(`broker: ${e instanceof Error ? e.message : 'bad arguments'}`);
    return usage();
  }
  const { values, positionals } = parsed;
  const [sub, name, ...extra] = positionals;
  if (extra.length > 0) return usage();
  if (sub !== 'list' && (name === undefined || !['get', 'put', 'rm'].includes(sub ?? ''))) return usage();
  if (sub === 'list' && name !== undefined) return usage();
  if (values.source !== undefined && values.source !== 'declared' && values.source !== 'managed')
    return usage();

  try {
    const client = await clientFor(values, deps);
    switch (sub) {
      case 'list': {
        const filter = {
          source: values.source as 'declared' | 'managed' | undefined,
          template: values.template,
        };
        for await (const entry of client.list(kind, filter)) {
          if (values.json) out(JSON.stringify(entry));
          else
            out(
              [entry.id ?? entry.name, entry.source, kind === 'connection' ? (entry.template ?? '-') : '']
                .join('\t')
                .trimEnd(),
            );
        }
        return 0;
      }
      case 'get':
        out(JSON.stringify(await client.get(kind, name!), null, 2));
        return 0;
      case 'put': {
        const text = values.file
          ? await readFile(values.file, 'utf8')
          : await deps.readStdin(`definition of ${noun} ${name}`);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new AdminProblem(
            'invalid_request',
            `the definition${values.file ? ` in ${values.file}` : ''} is not valid JSON`,
            [{ path: '', message: 'not valid JSON' }],
          );
        }
        const { entry, created } = await client.put(kind, name!, body);
        out(`${created ? 'Created' : 'Updated'} ${noun} ${name} (etag ${entry.etag ?? '-'}).`);
        return 0;
      }
      default:
        await client.remove(kind, name!);
        out(`Deleted ${noun} ${name}.`);
        return 0;
    }
  } catch (e) {
    return reportProblem(e, err);
  }
}

/**
 * `broker invite ID`: a new invitation, locally or through a deployed broker's admin route. The link
 * is printed on stdout, once, for the admin to send; it is never logged.
 */
export async function inviteCommand(
  args: string[],
  out: (line: string) => void,
  deps: DefinitionsDeps,
): Promise<number> {
  const err = deps.err ?? out;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (e) {
    err(`broker: ${e instanceof Error ? e.message : 'bad arguments'}`);
    parsed = { values: {}, positionals: [] } as unknown as ReturnType<typeof parse>;
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    err(`usage: broker invite ID [--expires P7D] [--note TEXT] [--replace]\n${DEFINITIONS_USAGE}`);
    return 2;
  }
  try {
    const client = await clientFor(values, deps);
    const body: InviteBody = {};
    if (values.expires !== undefined) body.expiresIn = values.expires;
    if (values.note !== undefined) body.note = values.note;
    if (values.replace) body.replace = true;
    const created = await client.invite(positionals[0]!, body);
    out(created.url);
    out(
      `Invitation ${created.id} for ${positionals[0]} expires ${created.expiresAt}${created.replace ? ' (any account may take the connection over)' : ''}.`,
    );
    return 0;
  } catch (e) {
    return reportProblem(e, err);
  }
}

function reportProblem(e: unknown, err: (line: string) => void): number {
  if (!(e instanceof AdminProblem)) throw e;
  if (e.code === 'usage') {
    err(`broker: ${e.detail}`);
    return 2;
  }
  err(`broker: ${e.code}: ${e.detail}`);
  for (const issue of e.errors) err(`  ${issue.path || '(body)'}: ${issue.message}`);
  return 1;
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      scope: { type: 'string' },
      file: { type: 'string', short: 'f' },
      source: { type: 'string' },
      template: { type: 'string' },
      json: { type: 'boolean' },
      expires: { type: 'string' },
      note: { type: 'string' },
      replace: { type: 'boolean' },
    },
  });
}

async function clientFor(
  values: { url?: string; key?: string; scope?: string },
  deps: DefinitionsDeps,
): Promise<AdminClient> {
  const url = values.url;
  if (!url) return localAdminClient(await deps.openBroker());
  if (!/^https?:\/\//.test(url))
    throw new AdminProblem('usage', `--url must be an http(s) URL, not "${url}"`);
  const apiUri = deps.env.BROKER_API_URI;
  const authorize = adminAuthorization({
    key: values.key ?? deps.env.BROKER_FUNCTION_KEY,
    scope: values.scope ?? (apiUri ? `${apiUri.replace(/\/+$/, '')}/.default` : undefined),
  });
  return httpAdminClient({ url, authorize, fetch: deps.fetch });
}
