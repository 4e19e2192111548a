import type { TokenCredential } from '@azure/core-auth';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerCredential, BrokerError } from '../../clients/node/src/index.js';
import { type FakeBroker, newToken, sendJson, startFakeBroker, tokenBody } from './fake-broker.js';

/**
 * The Node credential's behaviour against a scripted broker (real HTTP): cache, single flight, the
 * scope rule, retry on 503, and every kind of bad answer turned into a BrokerError that leaks nothing.
 */
const KEY = 'fk-secret-function-key-0123456789';
const OWN = 'https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.Read';

describe('BrokerCredential (Node) against a scripted broker', () => {
  let fake: FakeBroker;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  /** Every token the fake issued and every error seen, for the leak check at the end. */
  const errors: BrokerError[] = [];
  const issued: string[] = [KEY];

  beforeAll(async () => {
    fake = await startFakeBroker();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    fake.requests.length = 0;
    fake.handle((_req, res) => {
      const body = tokenBody({ scope: OWN });
      issued.push(body.access_token);
      sendJson(res, 200, body);
    });
  });
  afterAll(async () => {
    await fake.close();
    // Give stray rejections a turn to surface before looking.
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
    for (const err of errors) for (const secret of issued) expect(err.message).not.toContain(secret);
  });

  const credential = (retry?: { maxWaitMs?: number; attemptTimeoutMs?: number }) =>
    new BrokerCredential({ url: fake.url, connection: 'mail', functionKey: KEY, retry });

  async function failure(promise: Promise<unknown>): Promise<BrokerError> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BrokerError);
    errors.push(err as BrokerError);
    return err as BrokerError;
  }

  it('sends the key, caches the token until 5 minutes before expiry, and omits scope= for the own scopes', async () => {
    fake.handle((_req, res) => sendJson(res, 200, tokenBody({ scope: OWN })));
    const cred = credential();
    const first = await cred.getToken([]);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]!.headers['x-functions-key']).toBe(KEY);
    expect(fake.requests[0]!.query.get('connection')).toBe('mail');
    expect(fake.requests[0]!.query.has('scope')).toBe(false);
    expect(first.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3500_000);
    // The own scopes in any spelling, Graph's short names and {resource}/.default: the same token.
    for (const scopes of [
      'https://graph.microsoft.com/User.Read',
      ['User.Read', 'mail.read'],
      'https://graph.microsoft.com/.default',
      '',
    ]) {
      expect((await cred.getToken(scopes)).token).toBe(first.token);
    }
    expect(fake.requests).toHaveLength(1);
  });

  it('asks again for a token that expires within 5 minutes', async () => {
    fake.handle((_req, res) => sendJson(res, 200, tokenBody({ lifetimeSec: 299 })));
    const cred = credential();
    const a = await cred.getToken([]);
    const b = await cred.getToken([]);
    expect(a.token).not.toBe(b.token);
    expect(fake.requests).toHaveLength(2);
  });

  it('sends other scopes as scope= (after learning the own ones once) and caches per scope set', async () => {
    fake.handle((req, res) => {
      const scope = req.query.get('scope') ?? OWN;
      sendJson(res, 200, tokenBody({ scope }));
    });
    const cred = credential();
    const imap = 'https://outlook.office.com/IMAP.AccessAsUser.All';
    const a = await cred.getToken(imap);
    expect(fake.requests.map((r) => r.query.get('scope'))).toEqual([null, imap]);
    expect((await cred.getToken([imap])).token).toBe(a.token);
    const smtp = 'https://outlook.office.com/SMTP.Send';
    await cred.getToken([smtp]);
    expect(fake.requests.map((r) => r.query.get('scope'))).toEqual([null, imap, smtp]);
  });

  it('100 concurrent getToken on a cold cache cause one request', async () => {
    fake.handle((_req, res) => setTimeout(() => sendJson(res, 200, tokenBody()), 50));
    const cred = credential();
    const tokens = await Promise.all(Array.from({ length: 100 }, () => cred.getToken(OWN.split(' '))));
    expect(fake.requests).toHaveLength(1);
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
    // And a cached token costs no request at all.
    for (let i = 0; i < 10_000; i++) await cred.getToken([]);
    expect(fake.requests).toHaveLength(1);
  });

  it('retries upstream_unavailable after Retry-After, then serves the token', async () => {
    fake.handle((_req, res, n) => {
      if (n === 1) {
        sendJson(
          res,
          503,
          { code: 'upstream_unavailable', status: 503, detail: 'Entra is down' },
          {
            'retry-after': '1',
          },
        );
      } else sendJson(res, 200, tokenBody());
    });
    const started = Date.now();
    const token = await credential({ maxWaitMs: 5000 }).getToken([]);
    expect(token.token).toMatch(/^tok-/);
    expect(fake.requests).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('gives up with upstream_unavailable when Retry-After would exceed the bounded wait', async () => {
    fake.handle((_req, res) =>
      sendJson(
        res,
        503,
        {
          code: 'upstream_unavailable',
          status: 503,
          detail: 'Throttled.',
          remedy: { kind: 'wait', text: 'Nothing to do.' },
        },
        { 'retry-after': '30' },
      ),
    );
    const started = Date.now();
    const err = await failure(credential({ maxWaitMs: 2000 }).getToken([]));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err).toMatchObject({ code: 'upstream_unavailable', status: 503, retryAfter: 30 });
    expect(err.remedy).toEqual({ kind: 'wait', text: 'Nothing to do.' });
    expect(fake.requests).toHaveLength(1);
  });

  it('throws every other problem as a BrokerError with code, status, remedy and consentUrl', async () => {
    fake.handle((_req, res) =>
      sendJson(res, 409, {
        type: 'about:blank',
        title: 'Consent required',
        status: 409,
        code: 'consent_required',
        detail: 'Connection "mail" was never connected.',
        consentUrl: '/api/start?connection=mail',
        remedy: { kind: 'reconnect', text: 'Ana connects it again.' },
      }),
    );
    const err = await failure(credential().getToken([]));
    expect(err).toMatchObject({
      code: 'consent_required',
      status: 409,
      remedy: { kind: 'reconnect', text: 'Ana connects it again.' },
      consentUrl: '/api/start?connection=mail',
      retryAfter: undefined,
    });
    expect(err.message).toContain('never connected');
  });

  it.each([
    [
      'a 5xx without Retry-After',
      503,
      'application/problem+json',
      '{"code":"upstream_unavailable","status":503}',
      'upstream_unavailable',
    ],
    ['an HTML error page', 502, 'text/html', '<html><body>Bad gateway</body></html>', 'invalid_response'],
    ['HTML with 200', 200, 'text/html', '<html>login</html>', 'invalid_response'],
    ['garbage JSON', 200, 'application/json', '{"access_tok', 'invalid_response'],
    ['JSON without a token', 200, 'application/json', '{"token_type":"Bearer"}', 'invalid_response'],
    [
      'a token without expiry',
      200,
      'application/json',
      `{"access_token":"${newToken()}"}`,
      'invalid_response',
    ],
    ['an empty 500', 500, 'text/plain', '', 'invalid_response'],
    ["Azure's empty 401 for a wrong key", 401, 'text/plain', '', 'unauthorized'],
  ])('%s → a BrokerError, at once', async (_name, status, type, body, code) => {
    fake.handle((_req, res) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    });
    const err = await failure(credential({ maxWaitMs: 10_000 }).getToken([]));
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(fake.requests).toHaveLength(1);
    if (code === 'invalid_response') expect(err.message).not.toContain(body.slice(0, 12) || 'never');
  });

  it('a truncated body → invalid_response naming the truncation', async () => {
    fake.handle((_req, res) => {
      const body = JSON.stringify(tokenBody());
      issued.push(JSON.parse(body).access_token);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length + 100 });
      res.write(body.slice(0, 40));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const err = await failure(credential().getToken([]));
    expect(err.code).toBe('invalid_response');
    expect(err.message).toMatch(/truncated/);
  });

  it('no answer within the timeout → broker_timeout, no hang', async () => {
    fake.handle(() => {});
    const started = Date.now();
    const err = await failure(credential({ attemptTimeoutMs: 300 }).getToken([]));
    expect(err.code).toBe('broker_timeout');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('headers then silence → broker_timeout too', async () => {
    fake.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"access_token":');
    });
    const err = await failure(credential({ attemptTimeoutMs: 300 }).getToken([]));
    expect(err.code).toBe('broker_timeout');
  });

  it('a refused connection → broker_unreachable', async () => {
    const cred = new BrokerCredential({ url: 'http://127.0.0.1:1', connection: 'mail', functionKey: KEY });
    const err = await failure(cred.getToken([]));
    expect(err.code).toBe('broker_unreachable');
    expect(err.message).not.toContain(KEY);
  });

  it("honours the caller's abortSignal without failing the other callers of the same request", async () => {
    fake.handle((_req, res) => setTimeout(() => sendJson(res, 200, tokenBody()), 300));
    const cred = credential();
    const controller = new AbortController();
    const mine = cred.getToken([], { abortSignal: controller.signal });
    const theirs = cred.getToken([]);
    setTimeout(() => controller.abort(), 20);
    const started = Date.now();
    const err = await failure(mine);
    expect(err.code).toBe('aborted');
    expect(Date.now() - started).toBeLessThan(250);
    expect((await theirs).token).toMatch(/^tok-/);
    expect(fake.requests).toHaveLength(1);
  });

  it('aborting during a Retry-After wait ends at once', async () => {
    fake.handle((_req, res) =>
      sendJson(res, 503, { code: 'upstream_unavailable', status: 503 }, { 'retry-after': '5' }),
    );
    const controller = new AbortController();
    const pending = credential({ maxWaitMs: 20_000 }).getToken([], { abortSignal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    expect((await failure(pending)).code).toBe('aborted');
  });

  it('authenticates with a TokenCredential for the broker API instead of the key', async () => {
    const asked: string[] = [];
    const apiToken = newToken();
    issued.push(apiToken);
    const api: TokenCredential = {
      async getToken(scopes) {
        asked.push(String(scopes));
        return { token: apiToken, expiresOnTimestamp: Date.now() + 3600_000 };
      },
    };
    const cred = new BrokerCredential({
      url: `${fake.url}/api/`,
      connection: 'mail',
      credential: api,
      apiScope: 'api://broker/.default',
    });
    await cred.getToken([]);
    expect(asked).toEqual(['api://broker/.default']);
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${apiToken}`);
    expect(fake.requests[0]!.headers['x-functions-key']).toBeUndefined();

    const failing = new BrokerCredential({
      url: fake.url,
      connection: 'mail',
      credential: { getToken: () => Promise.reject(new Error('IMDS unreachable')) },
      apiScope: 'api://broker/.default',
    });
    expect((await failure(failing.getToken([]))).code).toBe('caller_credential_failed');
    expect(() => new BrokerCredential({ url: fake.url, connection: 'mail', credential: api })).toThrow(
      /apiScope/,
    );
  });

  it('xoauth2(): the broker builds it for the account; with user it is built from the token', async () => {
    fake.handle((req, res) => {
      const body = tokenBody();
      const xoauth2 =
        req.query.get('format') === 'xoauth2'
          ? Buffer.from(`user=ana@contoso.com\x01auth=Bearer ${body.access_token}\x01\x01`).toString('base64')
          : undefined;
      sendJson(res, 200, { ...body, ...(xoauth2 ? { xoauth2 } : {}) });
    });
    const cred = credential();
    const own = Buffer.from(await cred.xoauth2(), 'base64').toString();
    expect(own).toMatch(/^user=ana@contoso\.com\x01auth=Bearer tok-\S+\x01\x01$/);
    expect(fake.requests[0]!.query.get('format')).toBe('xoauth2');
    // The same token serves getToken and a second xoauth2() without another request.
    expect(own).toContain((await cred.getToken([])).token);
    await cred.xoauth2();
    const desk = Buffer.from(await cred.xoauth2({ user: 'desk1@contoso.com' }), 'base64').toString();
    expect(desk).toMatch(/^user=desk1@contoso\.com\x01auth=Bearer tok-/);
    expect(fake.requests).toHaveLength(1);

    // A broker that ignores format=xoauth2: a clear error, not `undefined`.
    fake.handle((_req, res) => sendJson(res, 200, tokenBody()));
    expect((await failure(credential().xoauth2())).code).toBe('invalid_response');
  });
});
