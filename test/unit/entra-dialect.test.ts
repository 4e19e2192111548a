import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import type { Connection, EntraConnectionConfig } from '../../src/lib/config/connections.js';
import type { BrokerError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/logger.js';
import { getRequest, send } from '../../src/lib/oauth/index.js';
import { entraDialect } from '../../src/lib/providers/entra.js';
import type { DialectDeps, ProviderDialect } from '../../src/lib/providers/provider.js';
import { rejection } from '../support/errors.js';

// Values the broker sends and must never repeat in an error or a log line.
const CLIENT_SECRET = 'cs~SECRET-client-secret-value';
const REFRESH_TOKEN = '0.AXoA-SECRET-refresh-token';
const CODE = '0.AXoA-SECRET-authorization-code';
const VERIFIER = 'SECRET-code-verifier-0123456789abcdefghijklmnop';
const SENT_SECRETS = [CLIENT_SECRET, REFRESH_TOKEN, CODE, VERIFIER];

const TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const idToken = (claims: Record<string, unknown>) =>
  `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}.c2ln`;

const SUCCESS_CLAIMS = { preferred_username: 'ana@contoso.com', tid: TENANT, nonce: 'nonce-1' };
const SUCCESS = {
  token_type: 'Bearer',
  scope: 'https://graph.microsoft.com/Files.ReadWrite.All',
  expires_in: 3599,
  ext_expires_in: 3599,
  access_token: 'eyJ0eXAi.new-access-token',
  refresh_token: '0.AXoA-new-refresh-token',
  id_token: idToken(SUCCESS_CLAIMS),
};

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  form: Record<string, string>;
}

type Handler = (request: Recorded, res: ServerResponse, index: number) => void;

interface FakeProvider {
  authority: string;
  requests: Recorded[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A tiny token endpoint on 127.0.0.1 that records every form it is posted. */
async function fakeProvider(handler: Handler): Promise<FakeProvider> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const recorded: Recorded = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        form: Object.fromEntries(new URLSearchParams(body)),
      };
      requests.push(recorded);
      handler(recorded, res, requests.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  cleanups.push(close);
  return { authority: `http://127.0.0.1:${port}`, requests, close };
}

/** A port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function connection(authority: string, overrides: Partial<EntraConnectionConfig> = {}): Connection {
  return {
    provider: 'entra',
    flow: 'authorization_code',
    authority,
    tenant: 'common',
    clientId: '6731de76-14a6-49ae-97bc-6eba6914391e',
    scopes: ['https://graph.microsoft.com/Files.ReadWrite.All'],
    rotateAfter: 'PT24H',
    ...overrides,
    id: 'onedrive',
    redirectUri: 'https://broker.example/api/callback',
    rotateAfterMs: 86_400_000,
  };
}

interface Harness {
  dialect: ProviderDialect;
  logs: string[];
  fetchCalls: string[];
}

function harness(
  conn: Connection,
  options: Partial<Pick<DialectDeps, 'timeoutMs' | 'maxRetries' | 'fetch'>> & { secret?: string } = {},
): Harness {
  const logs: string[] = [];
  const fetchCalls: string[] = [];
  const inner = options.fetch ?? fetch;
  const counting: typeof fetch = (input, init) => {
    fetchCalls.push(String(input));
    return inner(input, init);
  };
  const dialect = entraDialect(conn, {
    fetch: counting,
    clock: systemClock,
    logger: createLogger((_level, line) => logs.push(line), 'debug'),
    clientSecret: async () => (conn.credential ? options.secret : undefined),
    timeoutMs: options.timeoutMs,
    maxRetries: options.maxRetries,
  });
  return { dialect, logs, fetchCalls };
}

/** Nothing the broker sent may come back in an error or a log line. */
function expectNothingSecret(err: BrokerError | undefined, logs: string[]) {
  const visible = [
    err?.message ?? '',
    JSON.stringify(err?.providerError ?? {}),
    String((err?.cause as Error | undefined)?.message ?? ''),
    ...logs,
  ].join('\n');
  for (const secret of SENT_SECRETS) expect(visible).not.toContain(secret);
}

const confidential = { credential: { type: 'secret', secretName: 'onedrive-secret' } } as const;

describe('entraDialect: requests', () => {
  it('adds offline_access, openid and profile once each, in a stable order', () => {
    const { dialect } = harness(
      connection('https://login.microsoftonline.com', {
        scopes: [
          'openid',
          'https://graph.microsoft.com/Mail.Read',
          'offline_access',
          'Mail.Read',
          'Mail.Read',
        ],
      }),
    );
    expect(dialect.defaultScopes).toEqual([
      'openid',
      'https://graph.microsoft.com/Mail.Read',
      'offline_access',
      'Mail.Read',
      'profile',
    ]);
  });

  it('builds the authorize URL with PKCE, nonce and select_account', async () => {
    const { dialect } = harness(connection('https://login.microsoftonline.com/', { tenant: 'consumers' }));
    const url = new URL(
      await dialect.authorizeUrl({
        state: 'state-1',
        nonce: 'nonce-1',
        codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        redirectUri: 'https://broker.example/api/callback',
      }),
    );
    expect(`${url.origin}${url.pathname}`).toBe(
      'https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize',
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: '6731de76-14a6-49ae-97bc-6eba6914391e',
      response_type: 'code',
      redirect_uri: 'https://broker.example/api/callback',
      response_mode: 'query',
      scope: 'https://graph.microsoft.com/Files.ReadWrite.All offline_access openid profile',
      state: 'state-1',
      nonce: 'nonce-1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      prompt: 'select_account',
    });
  });

  it('sends expectedAccount as login_hint instead of prompting', async () => {
    const { dialect } = harness(
      connection('https://login.microsoftonline.com', { expectedAccount: 'support@contoso.com' }),
    );
    const url = new URL(
      await dialect.authorizeUrl({ state: 's', nonce: 'n', codeChallenge: 'c', redirectUri: 'https://b/cb' }),
    );
    expect(url.searchParams.get('login_hint')).toBe('support@contoso.com');
    expect(url.searchParams.has('prompt')).toBe(false);
  });

  it('exchanges a code as a public client, without a secret', async () => {
    const provider = await fakeProvider((_req, res) => json(res, 200, SUCCESS));
    const { dialect } = harness(connection(provider.authority, { tenant: 'consumers' }));
    const tokens = await dialect.exchangeCode({
      code: CODE,
      codeVerifier: VERIFIER,
      redirectUri: 'https://broker.example/api/callback',
    });
    expect(tokens.accessToken).toBe('eyJ0eXAi.new-access-token');
    expect(tokens.refreshToken).toBe('0.AXoA-new-refresh-token');
    expect(provider.requests).toHaveLength(1);
    const [request] = provider.requests;
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe('/consumers/oauth2/v2.0/token');
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request?.form).toEqual({
      grant_type: 'authorization_code',
      client_id: '6731de76-14a6-49ae-97bc-6eba6914391e',
      code: CODE,
      redirect_uri: 'https://broker.example/api/callback',
      code_verifier: VERIFIER,
      scope: 'https://graph.microsoft.com/Files.ReadWrite.All offline_access openid profile',
    });
  });

  it('exchanges a code as a confidential client, with the secret from the store', async () => {
    const provider = await fakeProvider((_req, res) => json(res, 200, SUCCESS));
    const { dialect } = harness(connection(provider.authority, confidential), { secret: CLIENT_SECRET });
    await dialect.exchangeCode({ code: CODE, codeVerifier: VERIFIER, redirectUri: 'https://b/cb' });
    expect(provider.requests[0]?.form.client_secret).toBe(CLIENT_SECRET);
  });

  it('names the secret to set when the store lacks it, and sends nothing', async () => {
    const provider = await fakeProvider((_req, res) => json(res, 200, SUCCESS));
    const { dialect } = harness(connection(provider.authority, confidential), { secret: undefined });
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(err.code).toBe('client_misconfigured');
    expect(err.message).toContain('broker secrets set onedrive-secret');
    expect(provider.requests).toHaveLength(0);
  });

  it('redeems a refresh token for the default scopes', async () => {
    const provider = await fakeProvider((_req, res) => json(res, 200, SUCCESS));
    const { dialect } = harness(connection(provider.authority, confidential), { secret: CLIENT_SECRET });
    const tokens = await dialect.refresh({ refreshToken: REFRESH_TOKEN });
    expect(tokens.expiresIn).toBe(3599);
    expect(provider.requests[0]?.form).toEqual({
      grant_type: 'refresh_token',
      client_id: '6731de76-14a6-49ae-97bc-6eba6914391e',
      refresh_token: REFRESH_TOKEN,
      scope: 'https://graph.microsoft.com/Files.ReadWrite.All offline_access openid profile',
      client_secret: CLIENT_SECRET,
    });
  });

  it('redeems a refresh token for another resource, keeping offline_access', async () => {
    const provider = await fakeProvider((_req, res) => json(res, 200, SUCCESS));
    const { dialect } = harness(connection(provider.authority));
    await dialect.refresh({
      refreshToken: REFRESH_TOKEN,
      scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All'],
    });
    expect(provider.requests[0]?.form.scope).toBe(
      'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
    );
    expect(provider.requests[0]?.form).not.toHaveProperty('client_secret');
  });

  it('classifies a dead grant with the consent link', async () => {
    const provider = await fakeProvider((_req, res) =>
      json(res, 400, {
        error: 'invalid_grant',
        error_description: `AADSTS700082: The refresh token has expired due to inactivity. refresh_token=${REFRESH_TOKEN}`,
        error_codes: [700082],
      }),
    );
    const { dialect, logs } = harness(connection(provider.authority, confidential), {
      secret: CLIENT_SECRET,
    });
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(err.code).toBe('consent_required');
    expect(err.connectionId).toBe('onedrive');
    expect(err.providerError).toEqual({ error: 'invalid_grant', aadsts: 700082, status: 400 });
    expect(err.message).toContain('/api/start?connection=onedrive');
    expectNothingSecret(err, logs);
  });

  it('names the secret when the provider says it expired', async () => {
    const provider = await fakeProvider((_req, res) =>
      json(res, 401, { error: 'invalid_client', error_codes: [7000222] }),
    );
    const { dialect, logs } = harness(connection(provider.authority, confidential), {
      secret: CLIENT_SECRET,
    });
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(err.code).toBe('client_misconfigured');
    expect(err.message).toContain('broker secrets set onedrive-secret');
    expectNothingSecret(err, logs);
  });

  it('blames the caller when another scope was not consented', async () => {
    const provider = await fakeProvider((_req, res) =>
      json(res, 400, { error: 'invalid_grant', error_codes: [65001] }),
    );
    const { dialect } = harness(connection(provider.authority));
    const err = await rejection(
      dialect.refresh({ refreshToken: REFRESH_TOKEN, scopes: ['https://x/.default'] }),
    );
    expect(err.code).toBe('invalid_request');
  });
});

describe('entraDialect: the consenting account', () => {
  const { dialect } = harness(connection('https://login.microsoftonline.com'));
  const tokens = (claims?: Record<string, unknown>) => ({
    accessToken: 'at',
    tokenType: 'Bearer',
    expiresIn: 3600,
    idToken: claims ? idToken(claims) : undefined,
  });

  it('reads the account and tenant from the id_token', async () => {
    await expect(dialect.accountOf(tokens(SUCCESS_CLAIMS), 'nonce-1')).resolves.toEqual({
      account: 'ana@contoso.com',
      tenant: TENANT,
    });
  });

  it("reads the account id (pinning a connected grant) from the id_token's oid", async () => {
    const oid = '00000000-0000-4000-8000-00000000a11a';
    await expect(dialect.accountOf(tokens({ ...SUCCESS_CLAIMS, oid }), 'nonce-1')).resolves.toEqual({
      account: 'ana@contoso.com',
      tenant: TENANT,
      accountId: oid,
    });
  });

  it('falls back through email, upn and unique_name', async () => {
    await expect(dialect.accountOf(tokens({ email: 'e@x.com', upn: 'u@x.com' }))).resolves.toEqual({
      account: 'e@x.com',
    });
    await expect(
      dialect.accountOf(tokens({ upn: 'u@x.com', unique_name: 'live.com#u@x.com' })),
    ).resolves.toEqual({ account: 'u@x.com' });
    await expect(dialect.accountOf(tokens({ unique_name: 'live.com#u@x.com', tid: 't' }))).resolves.toEqual({
      account: 'live.com#u@x.com',
      tenant: 't',
    });
  });

  it('refuses an id_token from another sign-in', async () => {
    const err = await rejection(dialect.accountOf(tokens(SUCCESS_CLAIMS), 'nonce-2'));
    expect(err.code).toBe('consent_failed');
    expect(err.message).not.toContain('nonce-1');
    expect(err.message).not.toContain('nonce-2');
  });

  it('refuses an undecodable id_token when a nonce must be checked', async () => {
    const garbage = { ...tokens(), idToken: 'not-a-jwt' };
    expect((await rejection(dialect.accountOf(garbage, 'nonce-1'))).code).toBe('consent_failed');
    await expect(dialect.accountOf(garbage)).resolves.toEqual({});
  });

  it('knows nothing without an id_token', async () => {
    await expect(dialect.accountOf(tokens(), 'nonce-1')).resolves.toEqual({});
  });
});

describe('entraDialect over an unreliable network', () => {
  it('waits out a short Retry-After and succeeds', async () => {
    const provider = await fakeProvider((_req, res, index) =>
      index === 0
        ? json(res, 429, { error: 'temporarily_unavailable' }, { 'retry-after': '1' })
        : json(res, 200, SUCCESS),
    );
    const { dialect, logs } = harness(connection(provider.authority));
    const started = Date.now();
    const tokens = await dialect.refresh({ refreshToken: REFRESH_TOKEN });
    expect(tokens.accessToken).toBe('eyJ0eXAi.new-access-token');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(provider.requests).toHaveLength(2);
    expect(logs.some((line) => line.includes('"event":"provider_retry"'))).toBe(true);
    expectNothingSecret(undefined, logs);
  });

  it('gives up at once on a long Retry-After, passing it on', async () => {
    const provider = await fakeProvider((_req, res) =>
      json(res, 429, { error: 'temporarily_unavailable', error_codes: [50196] }, { 'retry-after': '120' }),
    );
    const { dialect, logs } = harness(connection(provider.authority, confidential), {
      secret: CLIENT_SECRET,
    });
    const started = Date.now();
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err.code).toBe('upstream_unavailable');
    expect(err.retryAfter).toBe(120);
    expect(err.providerError).toEqual({ error: 'temporarily_unavailable', aadsts: 50196, status: 429 });
    expect(provider.requests).toHaveLength(1);
    expectNothingSecret(err, logs);
  });

  it('retries a 503 maxRetries times, then reports the outage', async () => {
    const provider = await fakeProvider((_req, res) => json(res, 503, { error: 'temporarily_unavailable' }));
    const { dialect, logs } = harness(connection(provider.authority, confidential), {
      secret: CLIENT_SECRET,
      maxRetries: 2,
    });
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(err.code).toBe('upstream_unavailable');
    expect(err.retryAfter).toBe(5);
    expect(err.providerError?.status).toBe(503);
    expect(provider.requests).toHaveLength(3);
    expectNothingSecret(err, logs);
  });

  it('sends a refresh token exactly once when the provider does not answer', async () => {
    const provider = await fakeProvider(() => {
      // Never answers: the provider may or may not have redeemed the token.
    });
    const { dialect, logs } = harness(connection(provider.authority, confidential), {
      secret: CLIENT_SECRET,
      timeoutMs: 200,
    });
    const started = Date.now();
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(err.code).toBe('upstream_unavailable');
    expect(err.retryAfter).toBe(5);
    expect(err.message).toMatch(/not repeated/);
    expect(provider.requests).toHaveLength(1);
    expectNothingSecret(err, logs);
  });

  it('does not repeat a refresh through a 504 either', async () => {
    const provider = await fakeProvider((_req, res) => json(res, 504, { error: 'server_error' }));
    const { dialect } = harness(connection(provider.authority));
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(err.code).toBe('upstream_unavailable');
    expect(provider.requests).toHaveLength(1);
  });

  it('retries a GET that timed out, since repeating it is harmless', async () => {
    const provider = await fakeProvider(() => {});
    const logs: string[] = [];
    const deps = {
      fetch,
      clock: systemClock,
      logger: createLogger((_level, line) => logs.push(line), 'debug'),
      timeoutMs: 200,
      maxRetries: 2,
    };
    const err = await rejection(
      send(deps, getRequest(`${provider.authority}/.well-known/openid-configuration`)),
    );
    expect(err.code).toBe('upstream_unavailable');
    expect(provider.requests).toHaveLength(3);
  });

  it('retries when the connection is refused, then reports the outage', async () => {
    const port = await closedPort();
    const { dialect, fetchCalls, logs } = harness(connection(`http://127.0.0.1:${port}`, confidential), {
      secret: CLIENT_SECRET,
    });
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(err.code).toBe('upstream_unavailable');
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.retryAfter).toBe(5);
    expect(fetchCalls).toHaveLength(3);
    expectNothingSecret(err, logs);
  });

  it('recovers when a refused connection comes back', async () => {
    const provider = await fakeProvider((_req, res) => json(res, 200, SUCCESS));
    const dead = `http://127.0.0.1:${await closedPort()}`;
    let calls = 0;
    // The first attempt hits a port with nothing behind it, the next one the provider.
    const flaky: typeof fetch = (input, init) =>
      fetch(calls++ === 0 ? String(input).replace(provider.authority, dead) : input, init);
    const { dialect, fetchCalls } = harness(connection(provider.authority), { fetch: flaky });
    const tokens = await dialect.refresh({ refreshToken: REFRESH_TOKEN });
    expect(tokens.refreshToken).toBe('0.AXoA-new-refresh-token');
    expect(fetchCalls).toHaveLength(2);
    expect(provider.requests).toHaveLength(1);
  });

  it('reports an HTML page from a proxy as an outage without quoting it', async () => {
    const provider = await fakeProvider((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html>Proxy login. You posted refresh_token=${REFRESH_TOKEN}</html>`);
    });
    const { dialect, logs } = harness(connection(provider.authority));
    const err = await rejection(dialect.refresh({ refreshToken: REFRESH_TOKEN }));
    expect(err.code).toBe('upstream_unavailable');
    expect(err.message).toMatch(/not a token response/);
    expectNothingSecret(err, logs);
  });
});
