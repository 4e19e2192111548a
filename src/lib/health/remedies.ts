import { type Connection, credentialSecretName } from '../config/connections.js';
import { DAY_MS } from '../config/duration.js';
import { BrokerError, type Remedy, type RemedyKind } from '../errors.js';
import type { GrantTags } from '../tokens/grant-store.js';
import type { Deadline } from './deadlines.js';

/**
 * From what went wrong to what a person does about it (DESIGN.md, "Telling people what to do"). The
 * input is the stored `lastError` tag (`invalid_grant AADSTS50173`, `invalid_client`, `http_401`, or
 * a broker code), so the table is keyed by AADSTS number first, then by the `error` value; the
 * provider dialects' own classification (providers/*-errors.ts) decides *whether* a grant is dead,
 * this table only what to tell the person.
 *
 * An entry is the kind and "what happened", in words that follow "Connection X: ".
 */
type Entry = readonly [RemedyKind, string];

export const REMEDY_BY_AADSTS: Readonly<Record<number, Entry>> = {
  // The grant is dead: a new consent fixes it.
  700082: ['reconnect', 'the refresh token expired after 90 days without use'],
  50173: ['reconnect', "the grant was revoked, usually because the account's password was changed"],
  70043: ['reconnect', 'a Conditional Access sign-in frequency policy requires a fresh sign-in'],
  70008: ['reconnect', 'the refresh token has expired'],
  700081: ['reconnect', 'the refresh token reached its maximum lifetime'],
  700084: ['reconnect', 'the refresh token was issued to a single-page app and lived only 24 hours'],
  50132: ['reconnect', 'the session was revoked after a password change or expiry'],
  50133: ['reconnect', 'the session was revoked after a password change or expiry'],
  50055: ['reconnect', "the account's password has expired (change it first)"],
  50057: ['reconnect', 'the account is disabled (an admin must enable it first)'],
  50053: ['reconnect', 'the account is locked (wait or have an admin unlock it first)'],
  54005: ['reconnect', 'the authorization code was already redeemed'],
  65004: ['reconnect', 'consent was declined at sign-in'],
  // Multi-factor or step-up authentication.
  50076: ['mfa_then_reconnect', 'multi-factor authentication is required'],
  50079: ['mfa_then_reconnect', 'the account must register for multi-factor authentication'],
  50078: ['mfa_then_reconnect', 'the multi-factor authentication proof has expired'],
  50158: ['mfa_then_reconnect', 'an external security challenge (step-up) is required'],
  // Conditional Access blocks the broker.
  53000: ['conditional_access', 'Conditional Access requires a compliant device'],
  53001: ['conditional_access', 'Conditional Access requires a domain-joined device'],
  53002: ['conditional_access', 'Conditional Access requires an approved app'],
  53003: ['conditional_access', 'a Conditional Access policy blocked the sign-in'],
  530003: ['conditional_access', 'Conditional Access requires a managed device'],
  // The app lacks (admin) consent.
  65001: ['admin_consent', 'the app has no consent for the permissions it asks for'],
  90094: ['admin_consent', 'the permissions need an administrator to consent'],
  90008: ['admin_consent', 'the app needs consent for its Microsoft Graph permissions'],
  7000229: ['admin_consent', 'the app has no service principal in the tenant'],
  // The client secret (or certificate) is wrong or expired.
  7000222: ['new_client_secret', 'the client secret has expired'],
  7000215: ['new_client_secret', 'the client secret is wrong'],
  700027: ['new_client_secret', 'the client certificate is not registered on the app, or has expired'],
  // The app registration or the connection's configuration is wrong.
  700016: ['fix_app_registration', 'no app with this client id exists in the tenant'],
  50011: ['fix_app_registration', 'the redirect URI is not registered on the app'],
  500113: ['fix_app_registration', 'the app has no redirect URI registered'],
  9002326: ['fix_app_registration', 'the redirect URI is registered as a single-page app, not as Web'],
  9002313: ['fix_app_registration', 'the provider called the request malformed'],
  90033: ['fix_app_registration', 'the provider called the request malformed'],
  700054: ['fix_app_registration', 'the app registration does not allow this response type'],
  7000218: ['fix_app_registration', 'the app expects a client secret and none was sent'],
  700025: ['fix_app_registration', 'the app is a public client and must not be sent a client secret'],
  90023: ['fix_app_registration', 'the request is not allowed for this kind of client'],
  7000112: ['fix_app_registration', 'the app is disabled'],
  90002: ['fix_app_registration', 'the tenant does not exist'],
  50194: ['fix_app_registration', 'the app is not configured as multi-tenant'],
  65005: ['fix_app_registration', 'the app asks for permissions it does not declare'],
  70011: ['fix_app_registration', "the provider refuses the connection's scopes"],
  28000: ['fix_app_registration', "the provider refuses the connection's scopes together"],
  28002: ['fix_app_registration', "the provider refuses the connection's scopes for this resource"],
  28003: ['fix_app_registration', "the connection's scopes are empty or not valid"],
  650053: ['fix_app_registration', 'a scope of the connection does not exist on the resource'],
  1002012: ['fix_app_registration', 'a client credentials request needs one {resource}/.default scope'],
  500011: ['fix_app_registration', 'the resource does not exist in the tenant'],
  // The provider is busy or down.
  50196: ['wait', 'the provider detected a request loop and is throttling'],
  50000: ['wait', 'the provider had an internal error'],
};

/** RFC 6749 §5.2 / OpenID `error` values, the broker's own codes and tags without a number. */
export const REMEDY_BY_ERROR: Readonly<Record<string, Entry>> = {
  invalid_grant: ['reconnect', 'the provider no longer accepts the grant (expired, revoked or already used)'],
  interaction_required: ['reconnect', 'the provider requires the person to sign in again'],
  login_required: ['reconnect', 'the provider requires the person to sign in again'],
  consent_required: ['reconnect', 'the connection needs a new consent'],
  account_selection_required: ['reconnect', 'the provider requires the person to choose the account again'],
  access_denied: ['reconnect', 'the provider denied access'],
  invalid_token: ['reconnect', 'the provider no longer accepts the token'],
  invalid_client: ['new_client_secret', 'the provider rejected the client credentials'],
  http_401: ['new_client_secret', 'the provider rejected the client (HTTP 401)'],
  unauthorized_client: ['fix_app_registration', 'the client is not allowed to use this grant type'],
  unsupported_grant_type: [
    'fix_app_registration',
    'the provider does not support this grant type for the client',
  ],
  invalid_request: ['fix_app_registration', 'the provider called the request malformed'],
  invalid_scope: ['fix_app_registration', "the provider refuses the connection's scopes"],
  invalid_target: ['fix_app_registration', "the provider refuses the connection's resource"],
  invalid_resource: ['fix_app_registration', "the provider refuses the connection's resource"],
  http_403: ['fix_app_registration', 'the provider refused the client (HTTP 403)'],
  http_404: ['fix_app_registration', 'the token endpoint does not exist (HTTP 404)'],
  client_misconfigured: ['fix_app_registration', 'the provider rejects the client'],
  acs_retired_for_sharepoint_online: [
    'fix_app_registration',
    'Azure ACS no longer issues tokens for SharePoint Online (retired 2026-04-02)',
  ],
  temporarily_unavailable: ['wait', 'the provider is temporarily unavailable'],
  server_error: ['wait', 'the provider had an internal error'],
  slow_down: ['wait', 'the provider asks to slow down'],
  http_429: ['wait', 'the provider is throttling'],
  upstream_unavailable: ['wait', 'the provider or the store is unavailable'],
};

/** When nothing above knows the tag: the kind follows the error class, never nothing. */
const BY_CLASS: Readonly<
  Record<'consent_required' | 'client_misconfigured' | 'upstream_unavailable', Entry>
> = {
  consent_required: ['reconnect', 'the provider no longer accepts the grant'],
  client_misconfigured: ['fix_app_registration', 'the provider rejects the client'],
  upstream_unavailable: ['wait', 'the provider or the store is unavailable'],
};
export type ErrorClass = keyof typeof BY_CLASS;

/** `invalid_grant AADSTS50173` → its parts. */
export function parseErrorTag(tag: string): { error: string; aadsts?: number } {
  const match = /^(\S+)(?: AADSTS(\d{1,9}))?$/.exec(tag.trim());
  if (!match) return { error: tag.trim() };
  return { error: match[1]!, aadsts: match[2] === undefined ? undefined : Number(match[2]) };
}

/** The table's entry for a tag: AADSTS number, then `error` (an `http_5xx` is a wait), then the class. */
export function lookupRemedy(tag: string | undefined, fallback: ErrorClass): Entry {
  if (tag) {
    const { error, aadsts } = parseErrorTag(tag);
    const byNumber = aadsts === undefined ? undefined : REMEDY_BY_AADSTS[aadsts];
    if (byNumber) return byNumber;
    const byError = REMEDY_BY_ERROR[error];
    if (byError) return byError;
    if (/^http_5\d\d$/.test(error)) return ['wait', `the provider answered HTTP ${error.slice(5)}`];
    return [BY_CLASS[fallback][0], `the provider answered ${tag}`];
  }
  return BY_CLASS[fallback];
}

/** What the text needs to name: the connection, the account, the link, the secret. */
export interface RemedyContext {
  connection: Connection;
  /** `BROKER_PUBLIC_URL`: the link is `${publicUrl}/api/start?connection=ID`, never with a key. */
  publicUrl: string;
  /** The account connected now (from the tags), when `expectedAccount` is not set. */
  account?: string;
}

export function startLink(ctx: RemedyContext): string {
  return `${ctx.publicUrl}/api/start?connection=${encodeURIComponent(ctx.connection.id)}`;
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

/** What to fix for `fix_app_registration`, by what the provider said. */
function registrationFix(ctx: RemedyContext, tag: string | undefined): string {
  const c = ctx.connection;
  const { error, aadsts } = parseErrorTag(tag ?? '');
  if (error === 'acs_retired_for_sharepoint_online') {
    return `Move the connection to provider "entra" with the site's AllSites.Manage scope (docs/sharepoint.md), then open ${startLink(ctx)} and sign in as ${who(ctx)}.`;
  }
  if (aadsts === 50011 || aadsts === 500113 || aadsts === 9002326) {
    return `Add ${c.redirectUri} as a Web redirect URI of ${app(c)} (Authentication), then open ${startLink(ctx)} and sign in as ${who(ctx)}.`;
  }
  if (aadsts === 700016 || aadsts === 90002 || aadsts === 50194 || aadsts === 7000112) {
    const tenant = c.provider === 'entra' ? ` and "tenant" (${c.tenant})` : '';
    return `Check the connection's "clientId" (${c.clientId})${tenant} against the app registration, and that the app is enabled for that tenant.`;
  }
  if (aadsts === 7000218 || aadsts === 700025 || aadsts === 90023) {
    return `Make the connection's "credential" match ${app(c)}: a confidential client needs one, a public client (Allow public client flows) must have none.`;
  }
  if (
    error === 'invalid_scope' ||
    error === 'invalid_target' ||
    error === 'invalid_resource' ||
    (aadsts !== undefined && [70011, 28000, 28002, 28003, 650053, 500011, 65005].includes(aadsts))
  ) {
    return `Fix the connection's "scopes" (${c.scopes.join(' ')}) or the API permissions of ${app(c)}, then open ${startLink(ctx)} and sign in as ${who(ctx)}.`;
  }
  return `Check ${app(c)} and the connection's "clientId", "redirectUri", endpoints and "credential".`;
}

/** The text of each kind, after "Connection X: what happened." */
function action(kind: RemedyKind, ctx: RemedyContext, tag: string | undefined): string {
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
      return `An admin must grant consent for ${app(c)} (API permissions, Grant admin consent), then open ${link} and sign in as ${who(ctx)} again.`;
    case 'new_client_secret':
      return `Create a new client secret for ${app(c)} (Certificates & secrets) and ${storeSecret(c)}.`;
    case 'fix_app_registration':
      return registrationFix(ctx, tag);
    case 'wait':
      return 'Nothing to do: the broker retries by itself.';
    case 'renew_before_deadline':
      return `Open ${link} and sign in as ${who(ctx)} again before then.`;
  }
}

/** The remedy of a failure tag (`lastError`, or a thrown error's tag) for one connection. */
export function remedyForTag(tag: string | undefined, fallback: ErrorClass, ctx: RemedyContext): Remedy {
  let [kind, what] = lookupRemedy(tag, fallback);
  // A public client has no secret to renew: its registration is what is wrong.
  if (kind === 'new_client_secret' && !ctx.connection.credential) kind = 'fix_app_registration';
  return { kind, text: `Connection ${ctx.connection.id}: ${what}. ${action(kind, ctx, tag)}` };
}

/**
 * The remedy of a thrown error, for the problem body and the callback's page; undefined for errors
 * that are the caller's (a bad parameter, an unknown connection), not the connection's.
 */
export function remedyForError(err: BrokerError, ctx: RemedyContext): Remedy | undefined {
  const p = err.providerError;
  const tag = p ? (p.aadsts ? `${p.error} AADSTS${p.aadsts}` : p.error) : undefined;
  switch (err.code) {
    case 'consent_required':
    case 'client_misconfigured':
    case 'upstream_unavailable':
      return remedyForTag(tag, err.code, ctx);
    case 'consent_failed':
      // The provider's own refusal says what to fix (AADSTS65001, 50011…); a lost or old state does not.
      if (tag) return remedyForTag(tag, 'consent_required', ctx);
      return {
        kind: 'reconnect',
        text: `Connection ${ctx.connection.id}: the sign-in could not be completed. ${action('reconnect', ctx, undefined)}`,
      };
    case 'account_mismatch':
      return {
        kind: 'reconnect',
        text: `Connection ${ctx.connection.id}: another account signed in, so nothing was stored. ${action('reconnect', ctx, undefined)}`,
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
        text: `Connection ${c.id}: the ${what} expired on ${day}. ${action('new_client_secret', ctx, undefined)}`,
      };
    }
    return {
      kind: 'reconnect',
      text: `Connection ${c.id}: ${DEADLINE_WORDS[deadline.kind].replace('expires', 'expired')} on ${day}. ${action('reconnect', ctx, undefined)}`,
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
    renew = action('renew_before_deadline', ctx, undefined);
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
 * first (from `lastError`), then never connected, then the nearest deadline inside `warnBeforeMs`.
 */
export function remedyFor(
  input: HealthInput,
  ctx: RemedyContext,
  options: { now: number; warnBeforeMs: number },
): Remedy | null {
  const { tags } = input;
  if (!tags) {
    return {
      kind: 'reconnect',
      text: `Connection ${ctx.connection.id}: never connected. Open ${startLink(ctx)} and sign in as ${who(ctx)}.`,
    };
  }
  if (tags.status === 'needs_consent') return remedyForTag(tags.lastError, 'consent_required', ctx);
  if (tags.lastError) return remedyForTag(tags.lastError, 'client_misconfigured', ctx);
  const next = input.deadlines[0];
  if (next && Date.parse(next.at) - options.now <= options.warnBeforeMs) {
    return remedyForDeadline(next, ctx, options.now);
  }
  return null;
}
