import { type Connection, credentialSecretName, isAppOnly } from '../config/connections.js';
import { DAY_MS } from '../config/duration.js';
import { BrokerError, type Failure, type Remedy, type RemedyKind, UNCLASSIFIED_FAILURES } from '../errors.js';
import { startPath } from '../links.js';
import { type GrantTags, storedFailure } from '../tokens/grant-store.js';
import { appOnlyWords } from './app-only-remedy.js';
import type { Deadline } from './deadlines.js';

/**
 * Puts a failure into words (docs/design.md, "Telling people what to do"). What a failure *is* —
 * its class, its answer and its remedy kind — was decided once, by its provider's table
 * (`oauth/classify.ts`, `providers/entra-errors.ts`, `providers/sharepoint-acs-errors.ts`), and
 * arrives here as a `Failure`: on a thrown `BrokerError`, or from a grant's stored tags. Nothing here
 * classifies; this file only names the connection, the account, the link and the setting.
 */

/** What the text needs to name: the connection, the account, the link, the secret. */
export interface RemedyContext {
  connection: Connection;
  /** `BROKER_PUBLIC_URL`: the link is `${publicUrl}/api/start?connection=ID`, never with a key. */
  publicUrl: string;
  /** The account connected now (from the tags), when `expectedAccount` is not set. */
  account?: string;
}

export function startLink(ctx: RemedyContext): string {
  return `${ctx.publicUrl}${startPath(ctx.connection.id)}`;
}

function who(ctx: RemedyContext): string {
  return ctx.connection.expectedAccount ?? ctx.account ?? "the account the connection's service uses";
}

function app(c: Connection): string {
  return c.provider === 'entra' ? `app registration ${c.clientId}` : `client ${c.clientId}`;
}

function storeSecret(c: Connection): string {
  const name = credentialSecretName(c.credential);
  if (c.credential?.type === 'certificate')
    return `store its PEM bundle (key and certificate) as the secret ${name} (Key Vault: import the certificate under that name)`;
  return name
    ? `store it with: broker secrets set ${name} (with its expiry date)`
    : 'store it under the secret named by the connection\'s "credential"';
}

/** What to fix for `fix_app_registration`, by the setting the failure's row names. */
function registrationFix(ctx: RemedyContext, failure: Failure | undefined): string {
  const c = ctx.connection;
  switch (failure?.hint) {
    case 'acs_retired':
      return `Move the connection to provider "entra" with the site's AllSites.Manage scope (docs/sharepoint.md), then open ${startLink(ctx)} and sign in as ${who(ctx)}.`;
    case 'redirect_uri':
      return `Add ${c.redirectUri} as a Web redirect URI of ${app(c)} (Authentication), then open ${startLink(ctx)} and sign in as ${who(ctx)}.`;
    case 'client_id': {
      const tenant = c.provider === 'entra' ? ` and "tenant" (${c.tenant})` : '';
      return `Check the connection's "clientId" (${c.clientId})${tenant} against the app registration, and that the app is enabled for that tenant.`;
    }
    case 'credential':
      return `Make the connection's "credential" match ${app(c)}: a confidential client needs one, a public client (Allow public client flows) must have none.`;
    case 'scopes':
      if (failure.scope !== undefined) {
        return `Ask for a scope this connection allows, or add ${failure.scope} to the API permissions of ${app(c)} and to the connection's "allowedScopes".`;
      }
      return `Fix the connection's "scopes" (${c.scopes.join(' ')}) or the API permissions of ${app(c)}, then open ${startLink(ctx)} and sign in as ${who(ctx)}.`;
    default:
      return `Check ${app(c)} and the connection's "clientId", "redirectUri", endpoints and "credential".`;
  }
}

/** The text of each kind, after "Connection X: what happened." */
function action(kind: RemedyKind, ctx: RemedyContext, failure?: Failure): string {
  const c = ctx.connection;
  const link = startLink(ctx);
  switch (kind) {
    case 'reconnect':
      return `Open ${link} and sign in as ${who(ctx)} again.`;
    case 'mfa_then_reconnect':
      return `Open ${link}, sign in as ${who(ctx)} and complete the multi-factor authentication it asks for (register a method first if there is none).`;
    case 'conditional_access':
      return `An Entra admin must allow ${app(c)} and the broker's location in the Conditional Access policy (or exempt it), then open ${link} and sign in as ${who(ctx)} again.`;
    case 'admin_consent':
      if (failure?.scope !== undefined) {
        return `An admin must grant consent for ${failure.scope} to ${app(c)} (API permissions, Grant admin consent); the connection itself is healthy and needs nothing.`;
      }
      return `An admin must grant consent for ${app(c)} (API permissions, Grant admin consent), then open ${link} and sign in as ${who(ctx)} again.`;
    case 'new_client_secret':
      return `Create a new client secret for ${app(c)} (Certificates & secrets) and ${storeSecret(c)}.`;
    case 'fix_app_registration':
      return registrationFix(ctx, failure);
    case 'wait':
      return 'Nothing to do: the broker retries by itself.';
    case 'renew_before_deadline':
      return `Open ${link} and sign in as ${who(ctx)} again before then.`;
  }
}

/** A failure in words, for one connection. */
export function renderRemedy(failure: Failure, ctx: RemedyContext): Remedy {
  const c = ctx.connection;
  const appOnly = isAppOnly(c) ? appOnlyWords(failure, { ...ctx, connection: c }) : undefined;
  if (appOnly) return appOnly;
  const named = failure.account && !ctx.account ? { ...ctx, account: failure.account } : ctx;
  if (failure.hint === 'never_connected') {
    return {
      kind: failure.remedy,
      text: `Connection ${ctx.connection.id}: never connected. Open ${startLink(named)} and sign in as ${who(named)}.`,
    };
  }
  return {
    kind: failure.remedy,
    text: `Connection ${ctx.connection.id}: ${failure.reason}. ${action(failure.remedy, named, failure)}`,
  };
}

/**
 * The remedy of a thrown error, for the problem body and the callback's page; undefined for errors
 * that are the caller's (a bad parameter, an unknown connection), not the connection's.
 */
export function remedyForError(err: BrokerError, ctx: RemedyContext): Remedy | undefined {
  if (err.failure) return renderRemedy(err.failure, ctx);
  const unclassified = UNCLASSIFIED_FAILURES[err.code];
  if (unclassified) return renderRemedy(unclassified, ctx);
  switch (err.code) {
    case 'consent_failed':
      return {
        kind: 'reconnect',
        text: `Connection ${ctx.connection.id}: the sign-in could not be completed. ${action('reconnect', ctx)}`,
      };
    case 'account_mismatch':
      return {
        kind: 'reconnect',
        text: `Connection ${ctx.connection.id}: another account signed in, so nothing was stored. ${action('reconnect', ctx)}`,
      };
    default:
      return undefined;
  }
}

/** Attaches `remedyForError` to a thrown value (once) and hands it back, for `throw explain(…)`. */
export function explain(err: unknown, ctx: RemedyContext): unknown {
  if (err instanceof BrokerError && !err.remedy) err.remedy = remedyForError(err, ctx);
  return err;
}

/**
 * At the edge (the adapter, before the problem is written): the remedy of an error that names its
 * connection, from the failure it carries and the connection's settings.
 */
export function explainError(
  err: unknown,
  connections: { peek(id: string): Connection | undefined },
  publicUrl: string,
): unknown {
  if (!(err instanceof BrokerError) || !err.connectionId || err.remedy) return err;
  // The connection was just looked up to fail, so it is in memory: no I/O on the error path.
  const connection = connections.peek(err.connectionId);
  return connection ? explain(err, { connection, publicUrl }) : err;
}

const DEADLINE_WORDS: Record<Deadline['kind'], string> = {
  refresh_token_inactivity: 'the refresh token expires through inactivity',
  hard_expiry: 'the consent expires',
  client_secret_expiry: 'the client secret expires',
  client_certificate_expiry: 'the client certificate expires',
};

/** A deadline inside `WARN_BEFORE` (or passed): which one, when, and what renews it. */
export function remedyForDeadline(deadline: Deadline, ctx: RemedyContext, now: number): Remedy {
  const c = ctx.connection;
  const at = Date.parse(deadline.at);
  const day = deadline.at.slice(0, 10);
  if (at <= now) {
    if (deadline.kind === 'client_secret_expiry' || deadline.kind === 'client_certificate_expiry') {
      const what = deadline.kind === 'client_secret_expiry' ? 'client secret' : 'client certificate';
      return {
        kind: 'new_client_secret',
        text: `Connection ${c.id}: the ${what} expired on ${day}. ${action('new_client_secret', ctx)}`,
      };
    }
    return {
      kind: 'reconnect',
      text: `Connection ${c.id}: ${DEADLINE_WORDS[deadline.kind].replace('expires', 'expired')} on ${day}. ${action('reconnect', ctx)}`,
    };
  }
  const days = Math.max(0, Math.floor((at - now) / DAY_MS));
  const when = `on ${day} (in ${days} day${days === 1 ? '' : 's'})`;
  let renew: string;
  if (deadline.kind === 'client_secret_expiry') {
    renew = `Before then, create a new client secret for ${app(c)} (Certificates & secrets) and ${storeSecret(c)}.`;
  } else if (deadline.kind === 'client_certificate_expiry') {
    renew = `Before then, upload a new certificate to ${app(c)} (Certificates & secrets) and ${storeSecret(c)}.`;
  } else if (deadline.kind === 'refresh_token_inactivity') {
    renew = `The rotation pass renews it (rotateAfter ${Math.round(c.rotateAfterMs / 3_600_000)} h): check that the rotate timer runs, or open ${startLink(ctx)} and sign in as ${who(ctx)} again.`;
  } else {
    renew = action('renew_before_deadline', ctx);
  }
  return {
    kind: 'renew_before_deadline',
    text: `Connection ${c.id}: ${DEADLINE_WORDS[deadline.kind]} ${when}. ${renew}`,
  };
}

/** The state the health of a connection is in, as the remedy sees it. */
export interface HealthInput {
  tags: GrantTags | undefined;
  deadlines: Deadline[];
}

/**
 * The one remedy of a connection, null when nothing is wrong: a dead grant or a rejected client
 * first (the failure its tags carry), then never connected, then the nearest deadline inside
 * `warnBeforeMs`.
 */
export function remedyFor(
  input: HealthInput,
  ctx: RemedyContext,
  options: { now: number; warnBeforeMs: number },
): Remedy | null {
  const failure = storedFailure(input.tags);
  if (failure) return renderRemedy(failure, { ...ctx, account: ctx.account ?? input.tags?.account });
  const next = input.deadlines[0];
  if (next && Date.parse(next.at) - options.now <= options.warnBeforeMs) {
    return remedyForDeadline(next, ctx, options.now);
  }
  return null;
}
