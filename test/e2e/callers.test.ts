import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import { appToken as clientToken } from '../support/app-token.js';
import { findLeaks, type Stack, startStack } from './harness.js';

/** The broker's own app registration and the tenant callers come from. */
const TENANT = '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13';
const API_ID = '0f6c2a9e-3d41-4b8a-a7e5-5c9d1e2b4f60';
const API_URI = 'api://m365-token-broker';
const ENGINE = {
  clientId: 'a1b2c3d4-0000-4000-8000-000000000001',
  oid: '11111111-1111-4111-8111-111111111111',
};
const NO_ROLE = {
  clientId: 'a1b2c3d4-0000-4000-8000-000000000002',
  oid: '22222222-2222-4222-8222-222222222222',
};
const STRANGER = {
  clientId: 'a1b2c3d4-0000-4000-8000-000000000003',
  oid: '33333333-3333-4333-8333-333333333333',
};
const SECRET = 'caller-app-secret-value';

interface Problem {
  code: string;
  detail: string;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function startCallerStack(cooldownMs?: number): Promise<Stack> {
  return startStack({
    connections: {
      support: {
        callers: [
          { name: 'ticket-engine', objectId: ENGINE.oid },
          { name: 'no-role', objectId: NO_ROLE.oid },
        ],
      },
    },
    env: (simUrl) => ({
      CALLER_AUTH: 'entra',
      BROKER_TENANT_ID: TENANT,
      BROKER_API_CLIENT_ID: API_ID,
      BROKER_API_URI: API_URI,
      BROKER_AUTHORITY: simUrl,
    }),
    overrides: { callerKeysCooldownMs: cooldownMs },
  });
}

function registerCallers(stack: Stack, version: 1 | 2 = 2): void {
  stack.sim.registerApi({ appId: API_ID, identifierUri: API_URI, accessTokenVersion: version });
  const role = { [API_ID]: ['Token.Request'] };
  for (const [app, roles] of [
    [ENGINE, role],
    [NO_ROLE, {}],
    [STRANGER, role],
  ] as const) {
    stack.sim.registerClient({
      clientId: app.clientId,
      secret: SECRET,
      redirectUris: [],
      servicePrincipalId: app.oid,
      appRoles: roles,
    });
  }
}

/** A calling service's token for the broker's API (or `resource`). */
const appToken = (stack: Stack, clientId: string, resource = API_ID): Promise<string> =>
  clientToken(stack.simUrl, { tenant: TENANT, clientId, secret: SECRET, resource });

const call = (stack: Stack, bearer: string | undefined, query = 'connection=support') =>
  stack.api(`/api/token?${query}`, {
    key: null,
    headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` },
  });

describe('callers prove who they are (CALLER_AUTH=entra)', () => {
  let stack: Stack;
  let keyFetches = 0;

  beforeAll(async () => {
    stack = await startCallerStack();
    registerCallers(stack);
    const res = await consent(stack.url, stack.local.functionKey, 'support', {
      account: 'support@contoso.com',
    });
    expect(res.status).toBe(200);
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack, [SECRET])).toEqual([]));

  it('an allowed caller with Token.Request gets the token; the vend is audited by caller name', async () => {
    const res = await call(stack, await appToken(stack, ENGINE.clientId));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { access_token: string }).access_token).toBeTruthy();
    const audit = stack.logs.filter((l) => l.includes('"event":"token.vended"')).map((l) => JSON.parse(l));
    expect(audit.at(-1)).toMatchObject({
      connection: 'support',
      caller: 'ticket-engine',
      callerId: ENGINE.oid,
    });
  });

  it('the status page shows which callers used a connection lately (this instance)', async () => {
    const res = await stack.api('/api/status', { headers: { accept: 'text/html' } });
    expect(await res.text()).toMatch(/used by ticket-engine <time/);
    const json = (await (await stack.api('/api/status')).json()) as {
      connections: { id: string; callers: { name: string; at: string }[] }[];
    };
    expect(json.connections.find((c) => c.id === 'support')?.callers.map((u) => u.name)).toEqual([
      'ticket-engine',
    ]);
  });

  it('a v1 token (identifier URI as audience, sts.windows.net issuer) is accepted too', async () => {
    stack.sim.registerApi({ appId: API_ID, identifierUri: API_URI, accessTokenVersion: 1 });
    try {
      const token = await appToken(stack, ENGINE.clientId, API_URI);
      expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())).toMatchObject({
        ver: '1.0',
        aud: API_URI,
      });
      expect((await call(stack, token)).status).toBe(200);
    } finally {
      stack.sim.registerApi({ appId: API_ID, identifierUri: API_URI, accessTokenVersion: 2 });
    }
  });

  it('a listed caller without the role, and a caller not listed, get 403 caller_not_allowed', async () => {
    for (const app of [NO_ROLE, STRANGER]) {
      const res = await call(stack, await appToken(stack, app.clientId));
      expect(res.status).toBe(403);
      expect(((await res.json()) as Problem).code).toBe('caller_not_allowed');
    }
  });

  it('the function key alone is not enough: 401 with a Bearer challenge', async () => {
    const res = await stack.api('/api/token?connection=support');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await res.json()) as Problem).code).toBe('unauthorized');
  });

  it('refuses every bad token with 401 problem+json, saying which check failed and echoing nothing', async () => {
    const good = await appToken(stack, ENGINE.clientId);
    const [header, payload] = good.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const now = Math.floor(stack.clock.now() / 1000);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const foreignSigned = (() => {
      const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'forged-kid' })}.${payload}`;
      return `${input}.${sign('RSA-SHA256', Buffer.from(input), privateKey).toString('base64url')}`;
    })();
    const jwks = (await (await fetch(`${stack.simUrl}/${TENANT}/discovery/v2.0/keys`)).json()) as {
      keys: { n: string }[];
    };
    const hs256 = (() => {
      const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: JSON.parse(Buffer.from(header, 'base64url').toString()).kid })}.${payload}`;
      return `${input}.${createHmac('sha256', jwks.keys[0]!.n).update(input).digest('base64url')}`;
    })();
    const cases: Record<string, string> = {
      malformed: 'not-a-jwt',
      truncated: good.slice(0, -12),
      huge: `${good}${'A'.repeat(10_000)}`,
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      'HS256 with the public key': hs256,
      'unknown kid': foreignSigned,
      expired: stack.sim.signToken({ ...claims, exp: now - 3600, nbf: now - 7200, iat: now - 7200 }),
      'not yet valid': stack.sim.signToken({ ...claims, nbf: now + 3600, iat: now + 3600, exp: now + 7200 }),
      'wrong audience': stack.sim.signToken({ ...claims, aud: 'api://someone-else' }),
      'wrong issuer': stack.sim.signToken({ ...claims, iss: `${stack.simUrl}/${API_ID}/v2.0` }),
      'wrong tenant': stack.sim.signToken({ ...claims, tid: API_ID }),
      'user (delegated) token': stack.sim.signToken({ ...claims, scp: 'access_as_user' }),
    };
    for (const [name, token] of Object.entries(cases)) {
      const res = await call(stack, token);
      expect(res.status, name).toBe(401);
      expect(res.headers.get('content-type'), name).toContain('application/problem+json');
      const text = await res.text();
      expect(text, name).not.toContain(token.slice(0, 40));
      expect((JSON.parse(text) as Problem).code, name).toBe('unauthorized');
    }
  });

  it('a flood of forged kids does not hammer the key endpoint (at most one fetch per 30 s)', async () => {
    keyFetches = stack.sim.stats.keyRequests;
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = Array.from({ length: 25 }, (_, i) => {
      const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: `forged-${i}` })}.${b64({ tid: TENANT })}`;
      return `${input}.${sign('RSA-SHA256', Buffer.from(input), privateKey).toString('base64url')}`;
    });
    const statuses = await Promise.all(forged.map(async (t) => (await call(stack, t)).status));
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(stack.sim.stats.keyRequests - keyFetches).toBeLessThanOrEqual(1);
  });

  it('scope= outside the policy is 403 scope_not_allowed with zero provider calls', async () => {
    const bearer = await appToken(stack, ENGINE.clientId);
    const before = stack.sim.stats.tokenRequests;
    const res = await call(
      stack,
      bearer,
      `connection=support&scope=${encodeURIComponent('https://graph.microsoft.com/Files.ReadWrite.All')}`,
    );
    expect(res.status).toBe(403);
    expect(((await res.json()) as Problem).code).toBe('scope_not_allowed');
    expect(stack.sim.stats.tokenRequests).toBe(before);
  });

  it('an unknown connection is 404 only for an authenticated caller', async () => {
    expect((await call(stack, undefined, 'connection=nope')).status).toBe(401);
    expect((await call(stack, await appToken(stack, ENGINE.clientId), 'connection=nope')).status).toBe(404);
  });
});

describe('a signing key rollover mid-run', () => {
  let stack: Stack;
  beforeAll(async () => {
    // No cooldown here, so the test need not wait out 30 s between the two key sets.
    stack = await startCallerStack(0);
    registerCallers(stack);
    expect(
      (await consent(stack.url, stack.local.functionKey, 'support', { account: 'support@contoso.com' }))
        .status,
    ).toBe(200);
  });
  afterAll(() => stack.close());

  it('keeps good callers working across the rollover', async () => {
    expect((await call(stack, await appToken(stack, ENGINE.clientId))).status).toBe(200);
    stack.sim.rollSigningKey({ retire: true });
    const after = await appToken(stack, ENGINE.clientId);
    expect((await call(stack, after)).status).toBe(200);
    expect((await call(stack, after)).status).toBe(200);
  });
});

describe('while the tenant key endpoint fails', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startCallerStack();
    registerCallers(stack);
  });
  afterAll(() => stack.close());

  it('20 requests make at most one key fetch; each is 503 upstream_unavailable with Retry-After', async () => {
    const bearer = await appToken(stack, ENGINE.clientId);
    stack.sim.failNext('keys', { status: 500, body: '{"error":"server_error"}' }, 50);
    const before = stack.sim.stats.keyRequests;
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await call(stack, bearer));
    answers.push(...(await Promise.all(Array.from({ length: 10 }, () => call(stack, bearer)))));
    expect(stack.sim.stats.keyRequests - before).toBeLessThanOrEqual(1);
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await res.json()) as Problem).code).toBe('upstream_unavailable');
    }
  });
});
