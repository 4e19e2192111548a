import { describe, expect, it } from 'vitest';
import { parseConnections } from '../../src/lib/config/load.js';
import { BrokerError, type RemedyKind } from '../../src/lib/errors.js';
import {
  type RemedyContext,
  remedyFor,
  remedyForDeadline,
  remedyForError,
} from '../../src/lib/health/remedies.js';
import { OAUTH_ERRORS } from '../../src/lib/oauth/index.js';
import { classifyEntraError, ENTRA_ERRORS } from '../../src/lib/providers/entra-errors.js';

const PUBLIC_URL = 'https://broker.example.com';
const DAY = 86_400_000;
const connections = parseConnections(
  JSON.stringify({
    connections: {
      'support-mailbox': {
        provider: 'entra',
        tenant: 'contoso.com',
        clientId: 'app-123',
        credential: { type: 'secret', secretName: 'ticket-app-secret' },
        scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All'],
        expectedAccount: 'support@contoso.com',
      },
      personal: { provider: 'entra', tenant: 'consumers', clientId: 'app-456', scopes: ['Mail.Read'] },
    },
  }),
  'connections.json',
  { publicUrl: PUBLIC_URL },
);
const mailbox = connections.get('support-mailbox')!;
const personal = connections.get('personal')!;
const ctx = { connection: mailbox, publicUrl: PUBLIC_URL };
const link = `${PUBLIC_URL}/api/start?connection=support-mailbox`;

/**
 * The remedy of what a provider said (`invalid_grant AADSTS50173`, `http_503`), classified once by
 * Entra's table as a refresh of the connection's own scopes would be, then put into words.
 */
function remedyOf(said: string, context: RemedyContext = ctx) {
  const [error, number] = said.split(' ');
  const http = /^http_(\d{3})$/.exec(error!);
  const aadsts = number ? Number(number.slice('AADSTS'.length)) : undefined;
  const status = http ? Number(http[1]) : error === 'invalid_client' ? 401 : 400;
  const err = classifyEntraError(
    { status, oauthError: http ? undefined : { error: error!, aadsts } },
    {
      connectionId: context.connection.id,
      secretName: 'ticket-app-secret',
      credentialType: context.connection.credential?.type ?? 'none',
    },
  );
  return remedyForError(err, context)!;
}

/** DESIGN.md's table, "Telling people what to do": the example codes of each kind. */
const DESIGN_EXAMPLES: Array<[RemedyKind, string[]]> = [
  [
    'reconnect',
    [
      'invalid_grant AADSTS700082',
      'invalid_grant AADSTS50173',
      'invalid_grant AADSTS70043',
      'invalid_grant AADSTS70008',
      'invalid_grant',
    ],
  ],
  [
    'mfa_then_reconnect',
    [
      'interaction_required AADSTS50076',
      'interaction_required AADSTS50079',
      'interaction_required AADSTS50158',
    ],
  ],
  [
    'conditional_access',
    ['access_denied AADSTS53003', 'interaction_required AADSTS530003', 'access_denied AADSTS53000'],
  ],
  ['admin_consent', ['invalid_grant AADSTS65001', 'invalid_grant AADSTS90094', 'invalid_grant AADSTS90008']],
  ['new_client_secret', ['invalid_client AADSTS7000222', 'invalid_client AADSTS7000215']],
  [
    'fix_app_registration',
    [
      'unauthorized_client AADSTS700016',
      'invalid_request AADSTS50011',
      'invalid_request AADSTS500113',
      'invalid_request AADSTS9002313',
      'invalid_request AADSTS700054',
      'invalid_client AADSTS7000218',
      'unauthorized_client',
    ],
  ],
  // AADSTS90033 is Entra's directory service unavailable (the contract once listed it as malformed).
  [
    'wait',
    [
      'temporarily_unavailable',
      'temporarily_unavailable AADSTS90033',
      'server_error',
      'http_503',
      'http_429',
    ],
  ],
];

describe('remedies table', () => {
  it.each(DESIGN_EXAMPLES)('DESIGN.md examples of %s map to it', (kind, tags) => {
    for (const tag of tags) expect(remedyOf(tag).kind, tag).toBe(kind);
    if (kind === 'wait') {
      expect(remedyForError(new BrokerError('upstream_unavailable', 'x'), ctx)?.kind).toBe('wait');
    }
  });

  it.each(Object.entries(ENTRA_ERRORS))('AADSTS%s maps to its kind and names the connection', (n, row) => {
    const remedy = remedyOf(`invalid_grant AADSTS${n}`);
    expect(remedy.kind).toBe(row.remedy);
    expect(remedy.text).toMatch(/^Connection support-mailbox: /);
    expect(remedy.text).not.toMatch(/code=|undefined|null/);
  });

  it.each(Object.entries(OAUTH_ERRORS))('error %s maps to its kind', (error, row) => {
    const remedy = remedyOf(error);
    expect(remedy.kind).toBe(row.remedy);
    expect(remedy.text).toMatch(/^Connection support-mailbox: /);
    expect(remedy.text).not.toMatch(/code=|undefined|null/);
  });

  it('the AADSTS number wins over the error value', () => {
    expect(remedyOf('invalid_grant AADSTS50076').kind).toBe('mfa_then_reconnect');
    expect(remedyOf('invalid_request AADSTS7000222').kind).toBe('new_client_secret');
  });

  it('unknown codes fall back by error class, never to nothing', () => {
    expect(remedyOf('invalid_grant AADSTS1').kind).toBe('reconnect');
    expect(remedyForError(new BrokerError('client_misconfigured', 'x'), ctx)?.kind).toBe(
      'fix_app_registration',
    );
    expect(remedyOf('weird_error').kind).toBe('wait');
    expect(remedyForError(new BrokerError('consent_required', 'x'), ctx)?.kind).toBe('reconnect');
    // A grant stored before failures were classified into tags: its state decides, its lastError is named.
    const old = { status: 'needs_consent' as const, lastError: 'weird_error' };
    const remedy = remedyFor({ tags: old, deadlines: [] }, ctx, { now: 0, warnBeforeMs: 0 });
    expect(remedy?.kind).toBe('reconnect');
    expect(remedy?.text).toContain('the provider answered weird_error');
  });

  it('reconnect texts name the account and the link, never a function key', () => {
    const r = remedyOf('invalid_grant AADSTS50173');
    expect(r.text).toBe(
      `Connection support-mailbox: the grant was revoked, usually because the account's password was changed. Open ${link} and sign in as support@contoso.com again.`,
    );
    const connected = remedyOf('invalid_grant', {
      connection: personal,
      publicUrl: PUBLIC_URL,
      account: 'me@outlook.com',
    });
    expect(connected.text).toContain('sign in as me@outlook.com again');
  });

  it('a client secret remedy names the secret; a public client gets fix_app_registration instead', () => {
    expect(remedyOf('invalid_client AADSTS7000222').text).toContain('broker secrets set ticket-app-secret');
    const pub = remedyOf('invalid_client', { connection: personal, publicUrl: PUBLIC_URL });
    expect(pub.kind).toBe('fix_app_registration');
  });

  it('a redirect URI remedy names the URI to register', () => {
    expect(remedyOf('invalid_request AADSTS50011').text).toContain(
      `Add ${PUBLIC_URL}/api/callback as a Web redirect URI of app registration app-123`,
    );
  });

  it('errors: provider failures carry a remedy, the caller’s own mistakes do not', () => {
    const dead = classifyEntraError(
      { status: 400, oauthError: { error: 'invalid_grant', aadsts: 50076 } },
      { connectionId: 'support-mailbox' },
    );
    expect(remedyForError(dead, ctx)?.kind).toBe('mfa_then_reconnect');
    expect(remedyForError(new BrokerError('upstream_unavailable', 'x'), ctx)?.kind).toBe('wait');
    expect(remedyForError(new BrokerError('account_mismatch', 'x'), ctx)?.text).toContain(
      'sign in as support@contoso.com',
    );
    const refused = new BrokerError('consent_failed', 'x', {
      providerError: { error: 'access_denied', aadsts: 65001 },
      failure: ENTRA_ERRORS[65001],
    });
    expect(remedyForError(refused, ctx)?.kind).toBe('admin_consent');
    expect(remedyForError(new BrokerError('invalid_request', 'x'), ctx)).toBeUndefined();
    expect(remedyForError(new BrokerError('unknown_connection', 'x'), ctx)).toBeUndefined();
  });
});

describe('remedy of a connection', () => {
  const now = Date.UTC(2026, 5, 1);
  const options = { now, warnBeforeMs: 14 * DAY };
  const at = (days: number) => new Date(now + days * DAY).toISOString();

  it('is null when nothing is wrong, and reconnect when never connected', () => {
    const tags = { status: 'connected' as const, account: 'support@contoso.com' };
    expect(
      remedyFor({ tags, deadlines: [{ kind: 'client_secret_expiry', at: at(30) }] }, ctx, options),
    ).toBeNull();
    expect(remedyFor({ tags: undefined, deadlines: [] }, ctx, options)).toEqual({
      kind: 'reconnect',
      text: `Connection support-mailbox: never connected. Open ${link} and sign in as support@contoso.com.`,
    });
  });

  it('a dead grant or a rejected client wins over a deadline', () => {
    const deadlines = [{ kind: 'client_secret_expiry' as const, at: at(3) }];
    const dead = { status: 'needs_consent' as const, lastError: 'invalid_grant AADSTS50173' };
    expect(remedyFor({ tags: dead, deadlines }, ctx, options)?.kind).toBe('reconnect');
    const client = {
      status: 'connected' as const,
      lastError: 'invalid_client AADSTS7000222',
      remedy: 'new_client_secret' as const,
      reason: 'the client secret has expired',
    };
    expect(remedyFor({ tags: client, deadlines }, ctx, options)?.kind).toBe('new_client_secret');
    const stored = { status: 'needs_consent' as const };
    expect(remedyFor({ tags: stored, deadlines }, ctx, options)?.kind).toBe('reconnect');
  });

  it('renew_before_deadline says which deadline, when, and what renews it', () => {
    const secret = remedyForDeadline({ kind: 'client_secret_expiry', at: at(10) }, ctx, now);
    expect(secret.kind).toBe('renew_before_deadline');
    expect(secret.text).toContain('the client secret expires on 2026-06-11 (in 10 days)');
    expect(secret.text).toContain('broker secrets set ticket-app-secret');
    const idle = remedyForDeadline({ kind: 'refresh_token_inactivity', at: at(1) }, ctx, now);
    expect(idle.text).toContain('expires through inactivity on 2026-06-02 (in 1 day)');
    const hard = remedyForDeadline({ kind: 'hard_expiry', at: at(5) }, ctx, now);
    expect(hard.text).toContain(`the consent expires on 2026-06-06 (in 5 days). Open ${link}`);
  });

  it('a passed deadline: a new client secret, or a new consent', () => {
    expect(remedyForDeadline({ kind: 'client_secret_expiry', at: at(-1) }, ctx, now).kind).toBe(
      'new_client_secret',
    );
    const hard = remedyForDeadline({ kind: 'hard_expiry', at: at(-1) }, ctx, now);
    expect(hard).toMatchObject({ kind: 'reconnect' });
    expect(hard.text).toContain('the consent expired on 2026-05-31');
  });
});
