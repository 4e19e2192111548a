import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Remedy, RemedyKind } from '../../src/lib/errors.js';
import type { ConnectionHealth } from '../../src/lib/health/status-service.js';
import { consent } from '../fakes/consent-client.js';
import { CLIENT_SECRET_NAME, findLeaks, type Stack, startStack } from './harness.js';

const DAY = 86_400_000;
const ACCOUNT = 'support@contoso.com';

/** An Entra token endpoint error body, as Entra sends it. */
const entraError = (error: string, aadsts: number) =>
  JSON.stringify({
    error,
    error_description: `AADSTS${aadsts}: simulated. Trace ID: 0000`,
    error_codes: [aadsts],
  });

/**
 * DESIGN.md "Telling people what to do": every remedy kind, reached from a real upstream condition of
 * the simulator (an injected Entra error body, a 503, a client secret's expiry), as a person sees it in
 * the problem body of `/api/token` and in `/api/status`.
 */
describe('remedies: each kind from a real upstream condition', () => {
  let stack: Stack;
  const link = () => `${stack.url}/api/start?connection=mailbox`;
  const health = async () => {
    const body = (await (await stack.api('/api/status')).json()) as { connections: ConnectionHealth[] };
    return body.connections.find((c) => c.id === 'mailbox')!;
  };
  const reconnect = async () => {
    expect((await consent(stack.url, stack.local.functionKey, 'mailbox', { account: ACCOUNT })).status).toBe(
      200,
    );
    stack.local.broker.tokens.invalidate('mailbox');
  };

  beforeAll(async () => {
    stack = await startStack({
      connections: { mailbox: { expectedAccount: ACCOUNT } },
      overrides: { providerTimeoutMs: 500 },
    });
  });
  afterAll(() => stack.close());
  afterEach(async () => {
    expect(await findLeaks(stack)).toEqual([]);
    // Each case starts from a healthy connection, whatever the one before left.
    if ((await health()).status !== 'connected') await reconnect();
  });

  it('a healthy connection has remedy null; a never connected one says to connect', async () => {
    expect((await health()).remedy).toEqual({
      kind: 'reconnect',
      text: `Connection mailbox: never connected. Open ${link()} and sign in as ${ACCOUNT}.`,
    });
    const res = await stack.api('/api/token?connection=mailbox');
    expect(res.status).toBe(409);
    expect(((await res.json()) as { remedy: Remedy }).remedy.kind).toBe('reconnect');
    await reconnect();
    expect((await health()).remedy).toBeNull();
  });

  const cases: Array<[RemedyKind, number, string, number, number]> = [
    ['reconnect', 400, 'invalid_grant', 700082, 409],
    ['reconnect', 400, 'invalid_grant', 50173, 409],
    ['reconnect', 400, 'invalid_grant', 70043, 409],
    ['reconnect', 400, 'invalid_grant', 70008, 409],
    ['mfa_then_reconnect', 400, 'interaction_required', 50076, 409],
    ['mfa_then_reconnect', 400, 'interaction_required', 50079, 409],
    ['mfa_then_reconnect', 400, 'interaction_required', 50158, 409],
    ['conditional_access', 400, 'interaction_required', 53003, 409],
    ['conditional_access', 400, 'interaction_required', 530003, 409],
    ['admin_consent', 400, 'invalid_grant', 65001, 409],
    ['new_client_secret', 401, 'invalid_client', 7000222, 502],
    ['new_client_secret', 401, 'invalid_client', 7000215, 502],
    ['fix_app_registration', 400, 'unauthorized_client', 700016, 502],
    ['fix_app_registration', 400, 'invalid_request', 50011, 502],
    ['fix_app_registration', 401, 'invalid_client', 7000218, 502],
  ];

  it.each(cases)(
    '%s from HTTP %i %s AADSTS%i → /api/token %i and the same remedy on /api/status',
    async (kind, status, error, aadsts, answered) => {
      stack.sim.failNext('token', { status, body: entraError(error, aadsts) });
      const res = await stack.api('/api/token?connection=mailbox');
      expect(res.status).toBe(answered);
      const problem = (await res.json()) as { remedy: Remedy; providerError: { aadsts: number } };
      expect(problem.providerError.aadsts).toBe(aadsts);
      expect(problem.remedy.kind).toBe(kind);
      expect(problem.remedy.text).toMatch(/^Connection mailbox: /);
      expect(problem.remedy.text).not.toContain('code=');
      const h = await health();
      expect(h.lastError).toBe(`${error} AADSTS${aadsts}`);
      expect(h.remedy).toEqual(problem.remedy);
      if (answered === 409) {
        expect(h.status).toBe('needs_consent');
        expect(h.remedy!.text).toContain(link());
        expect(h.remedy!.text).toContain(ACCOUNT);
        // Asked again, the stored dead grant answers at once with the same remedy.
        const again = (await (await stack.api('/api/token?connection=mailbox')).json()) as { remedy: Remedy };
        expect(again.remedy).toEqual(h.remedy);
      } else {
        expect(h.status).toBe('connected');
      }
      if (kind === 'new_client_secret')
        expect(h.remedy!.text).toContain(`broker secrets set ${CLIENT_SECRET_NAME}`);
      if (aadsts === 50011)
        expect(h.remedy!.text).toContain(`Add ${stack.url}/api/callback as a Web redirect URI`);
      await reconnect();
      expect((await health()).remedy).toBeNull();
    },
  );

  it('wait: the provider down (503 after retries) → 503 with remedy wait; nothing stored', async () => {
    stack.sim.failNext('token', { status: 503, body: 'down' }, 3);
    const res = await stack.api('/api/token?connection=mailbox');
    expect(res.status).toBe(503);
    const problem = (await res.json()) as { remedy: Remedy };
    expect(problem.remedy.kind).toBe('wait');
    expect(problem.remedy.text).toContain('Nothing to do: the broker retries by itself.');
    expect((await health()).remedy).toBeNull();
  });

  it('wait: temporarily_unavailable AADSTS90033 (directory service down) → 503 and wait, never fix the app', async () => {
    if ((await health()).status !== 'connected') await reconnect();
    stack.sim.failNext('token', { status: 400, body: entraError('temporarily_unavailable', 90033) });
    const res = await stack.api('/api/token?connection=mailbox');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    const problem = (await res.json()) as { remedy: Remedy; providerError: { aadsts: number } };
    expect(problem.providerError.aadsts).toBe(90033);
    expect(problem.remedy.kind).toBe('wait');
    expect(problem.remedy.text).toContain('Nothing to do: the broker retries by itself.');
    expect((await health()).remedy).toBeNull();
  });

  it('admin_consent: AADSTS65001 for an extra scope= → 400 with a remedy naming that scope; the grant stays healthy', async () => {
    if ((await health()).status !== 'connected') await reconnect();
    const scope = 'https://a.example.com/x';
    stack.sim.failNext('token', { status: 400, body: entraError('invalid_grant', 65001) });
    const res = await stack.api(`/api/token?connection=mailbox&scope=${encodeURIComponent(scope)}`);
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { code: string; remedy?: Remedy };
    expect(problem.code).toBe('invalid_request');
    expect(problem.remedy?.kind).toBe('admin_consent');
    expect(problem.remedy?.text).toMatch(/^Connection mailbox: /);
    expect(problem.remedy?.text).toContain(scope);
    const h = await health();
    expect(h.status).toBe('connected');
    expect(h.remedy).toBeNull();
  });

  it('renew_before_deadline: a client secret 10 days from expiry', async () => {
    const store = stack.local.broker.store;
    const secret = (await store.getSecret(CLIENT_SECRET_NAME))!;
    const expiresOn = new Date(Math.floor((stack.clock.now() + 10 * DAY + 3_600_000) / 1000) * 1000);
    await store.updateSecretProperties(CLIENT_SECRET_NAME, secret.version, { expiresOn });
    const h = await health();
    expect(h.remedy?.kind).toBe('renew_before_deadline');
    expect(h.remedy?.text).toContain(
      `the client secret expires on ${expiresOn.toISOString().slice(0, 10)} (in 10 days)`,
    );
    expect(h.remedy?.text).toContain(`broker secrets set ${CLIENT_SECRET_NAME}`);
    // Past its expiry: a new secret, not a warning.
    stack.clock.advance(11 * DAY);
    expect((await health()).remedy?.kind).toBe('new_client_secret');
    await store.updateSecretProperties(CLIENT_SECRET_NAME, secret.version, {
      expiresOn: new Date(stack.clock.now() + 365 * DAY),
    });
  });

  it('the callback page tells the person what to do when the sign-in is refused', async () => {
    const out = await consent(stack.url, stack.local.functionKey, 'mailbox', {
      account: 'someone.else@contoso.com',
    });
    expect(out.status).toBe(403);
    expect(out.body).toContain('What to do:');
    expect(out.body).toContain(`Open ${link().replace(/&/g, '&#38;')} and sign in as ${ACCOUNT} again.`);
    const json = await consent(stack.url, stack.local.functionKey, 'mailbox', {
      account: 'someone.else@contoso.com',
      accept: 'application/json',
    });
    expect(JSON.parse(json.body)).toMatchObject({ code: 'account_mismatch', remedy: { kind: 'reconnect' } });
    const cancelled = await consent(stack.url, stack.local.functionKey, 'mailbox', { cancel: true });
    expect(cancelled.status).toBe(400);
    expect(cancelled.body).toContain('What to do:');
  });

  it('broker status prints each remedy under its connection', async () => {
    const { runCli } = await import('../../src/cli/commands.js');
    stack.sim.failNext('token', { status: 400, body: entraError('invalid_grant', 50173) });
    await stack.api('/api/token?connection=mailbox');
    const lines: string[] = [];
    expect(
      await runCli(['status'], (l) => lines.push(l), { openBroker: async () => stack.local.broker }),
    ).toBe(0);
    expect(lines[0]).toMatch(/^mailbox\tneeds_consent\tsupport@contoso.com\t.*invalid_grant AADSTS50173$/);
    expect(lines[1]).toBe(
      `  reconnect: Connection mailbox: the grant was revoked, usually because the account's password was changed. Open ${link()} and sign in as ${ACCOUNT} again.`,
    );
    await reconnect();
  });
});
