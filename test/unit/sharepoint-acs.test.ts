import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { type Connection, sharepointAcsConnection } from '../../src/lib/config/connections.js';
import { BrokerError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/logger.js';
import { classifyOAuthError, processTokenResponse } from '../../src/lib/oauth/index.js';
import type { ProviderDialect } from '../../src/lib/providers/provider.js';
import {
  ACS_RETIRED_ERROR,
  addCalendarMonths,
  isSharePointOnline,
  parseBearerChallenge,
  SHAREPOINT_PRINCIPAL,
  sharepointAcsDialect,
} from '../../src/lib/providers/sharepoint-acs.js';
import { jsonResponse as json, type SentRequest as Sent, stubFetch } from '../support/fetch.js';

const REALM = '3f4b2a10-8c7d-4e6f-9a1b-2c3d4e5f6a7b';
const CLIENT_ID = 'a1b2c3d4-0000-4000-8000-000000000001';
const SECRET = 'SECRET-add-in-client-secret=';
const REFRESH_TOKEN = 'IAAAA-SECRET-refresh-token';
const CHALLENGE = `Bearer realm="${REALM}",client_id="${SHAREPOINT_PRINCIPAL}",trusted_issuers="00000001-0000-0000-c000-000000000000@${REALM},https://sts.windows.net/*/",authorization_uri="https://login.windows.net/common/oauth2/authorize"`;

/** An ACS token answer as recorded: every number a string. */
const ACS_SUCCESS = {
  token_type: 'Bearer',
  access_token: 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2ln',
  expires_in: '43199',
  not_before: '1779526800',
  expires_on: '1779569999',
  resource: `${SHAREPOINT_PRINCIPAL}/city.example.org@${REALM}`,
};

/** A site that challenges with the realm and an ACS that answers `token`. */
function site(token: (sent: Sent) => Response) {
  return stubFetch((sent) => {
    if (sent.url.endsWith('/_vti_bin/client.svc')) return json(401, {}, { 'www-authenticate': CHALLENGE });
    if (sent.url.includes('/tokens/OAuth/2')) return token(sent);
    if (sent.url.endsWith('/_api/web/currentuser'))
      return json(200, { d: { Email: 'clerk@city.example.org' } });
    return new Response('not found', { status: 404 });
  });
}

function dialect(fetchStub: typeof fetch, siteUrl = 'https://city.example.org/sites/intranet', now?: number) {
  const config = sharepointAcsConnection.parse({
    provider: 'sharepoint-acs',
    siteUrl,
    clientId: CLIENT_ID,
    credential: { type: 'secret', secretName: 'sp-secret' },
    scopes: ['AllSites.Manage', 'offline_access'],
  });
  const connection: Connection = {
    ...config,
    id: 'intranet',
    redirectUri: 'https://broker.example.com/api/callback',
    rotateAfterMs: 86_400_000,
  };
  const logs: string[] = [];
  const built: ProviderDialect = sharepointAcsDialect(connection, {
    fetch: fetchStub,
    clock: new ManualClock(now ?? Date.UTC(2025, 5, 1)),
    logger: createLogger((_level, line) => logs.push(line), 'debug'),
    clientSecret: async () => SECRET,
    maxRetries: 0,
  });
  return { dialect: built, logs };
}

describe('parseBearerChallenge', () => {
  it("reads SharePoint Online's challenge", () => {
    expect(parseBearerChallenge(CHALLENGE)).toEqual({
      realm: REALM,
      client_id: SHAREPOINT_PRINCIPAL,
      trusted_issuers: `00000001-0000-0000-c000-000000000000@${REALM},https://sts.windows.net/*/`,
      authorization_uri: 'https://login.windows.net/common/oauth2/authorize',
    });
  });

  it('finds Bearer among the other schemes of an on-premises farm, and stops at the next scheme', () => {
    const header = `NTLM, Negotiate, Bearer realm="${REALM}", client_id="${SHAREPOINT_PRINCIPAL}", Basic realm="farm"`;
    expect(parseBearerChallenge(header)).toEqual({ realm: REALM, client_id: SHAREPOINT_PRINCIPAL });
  });

  it('unescapes quoted strings and takes tokens unquoted', () => {
    expect(parseBearerChallenge('bearer realm=abc, error="a \\"b\\""')).toEqual({
      realm: 'abc',
      error: 'a "b"',
    });
  });

  it('is undefined without a Bearer challenge', () => {
    expect(parseBearerChallenge(null)).toBeUndefined();
    expect(parseBearerChallenge('NTLM')).toBeUndefined();
    expect(parseBearerChallenge('Bearerish realm="x"')).toBeUndefined();
    expect(parseBearerChallenge('Bearer')).toEqual({});
  });
});

describe('addCalendarMonths', () => {
  it.each([
    ['2026-01-15T10:30:00.000Z', '2026-07-15T10:30:00.000Z'],
    ['2026-08-31T08:00:00.000Z', '2027-02-28T08:00:00.000Z'],
    ['2027-08-31T08:00:00.000Z', '2028-02-29T08:00:00.000Z'],
    ['2026-12-31T23:59:59.000Z', '2027-06-30T23:59:59.000Z'],
  ])('%s + 6 months = %s', (from, to) => {
    expect(addCalendarMonths(new Date(from), 6).toISOString()).toBe(to);
  });
});

describe('isSharePointOnline', () => {
  it.each([
    ['contoso.sharepoint.com', true],
    ['contoso-my.sharepoint.com', true],
    ['agency.sharepoint.us', true],
    ['intranet.city.example.org', false],
    ['sharepoint.com.evil.example', false],
    ['127.0.0.1:8080', false],
  ])('%s → %s', (host, online) => expect(isSharePointOnline(host)).toBe(online));
});

describe('ACS token responses', () => {
  it('reads digit strings as numbers and ignores not_before', () => {
    const tokens = processTokenResponse(
      { status: 200, headers: new Headers(), bodyText: JSON.stringify(ACS_SUCCESS) },
      Date.now(),
      classifyOAuthError,
    );
    expect(tokens).toMatchObject({
      accessToken: ACS_SUCCESS.access_token,
      tokenType: 'Bearer',
      expiresIn: 43_199,
    });
    expect(tokens.refreshToken).toBeUndefined();
  });

  it('falls back to expires_on when expires_in is missing', () => {
    const { expires_in: _, ...body } = ACS_SUCCESS;
    const now = (Number(ACS_SUCCESS.expires_on) - 600) * 1000;
    expect(
      processTokenResponse(
        { status: 200, headers: new Headers(), bodyText: JSON.stringify(body) },
        now,
        classifyOAuthError,
      ).expiresIn,
    ).toBe(600);
  });
});

describe('sharepointAcsDialect', () => {
  it('builds the consent URL without PKCE and without scopes ACS does not know', async () => {
    const { dialect: acs } = dialect(site(() => json(500, {})).fetch);
    const url = new URL(
      await acs.authorizeUrl({
        state: 'state-1',
        nonce: 'nonce-1',
        codeChallenge: 'challenge',
        redirectUri: 'https://broker.example.com/api/callback',
      }),
    );
    expect(url.origin + url.pathname).toBe(
      'https://city.example.org/sites/intranet/_layouts/15/OAuthAuthorize.aspx',
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: CLIENT_ID,
      scope: 'AllSites.Manage',
      response_type: 'code',
      redirect_uri: 'https://broker.example.com/api/callback',
      state: 'state-1',
    });
  });

  it('redeems at {accessControlUrl}/{realm}/tokens/OAuth/2 as client_id@realm for the site resource, realm looked up once', async () => {
    const { fetch: fetchStub, sent } = site(() => json(200, ACS_SUCCESS));
    const { dialect: acs } = dialect(fetchStub);
    const first = await acs.refresh({ refreshToken: REFRESH_TOKEN });
    await acs.refresh({ refreshToken: REFRESH_TOKEN });
    expect(first).toMatchObject({ expiresIn: 43_199, scope: 'AllSites.Manage' });
    expect(first.refreshToken).toBeUndefined();

    const challenges = sent.filter((s) => s.url.endsWith('/_vti_bin/client.svc'));
    expect(challenges).toHaveLength(1);
    expect(challenges[0]!.url).toBe('https://city.example.org/sites/intranet/_vti_bin/client.svc');
    expect(challenges[0]!.headers.get('authorization')).toBe('Bearer');
    const posts = sent.filter((s) => s.method === 'POST');
    expect(posts).toHaveLength(2);
    expect(posts[0]!.url).toBe(`https://accounts.accesscontrol.windows.net/${REALM}/tokens/OAuth/2`);
    expect(Object.fromEntries(posts[0]!.form)).toEqual({
      grant_type: 'refresh_token',
      refresh_token: REFRESH_TOKEN,
      client_id: `${CLIENT_ID}@${REALM}`,
      client_secret: SECRET,
      resource: `${SHAREPOINT_PRINCIPAL}/city.example.org@${REALM}`,
    });
  });

  it('exchanges a code with redirect_uri and no code_verifier', async () => {
    const { fetch: fetchStub, sent } = site(() =>
      json(200, { ...ACS_SUCCESS, refresh_token: REFRESH_TOKEN }),
    );
    const { dialect: acs } = dialect(fetchStub);
    const tokens = await acs.exchangeCode({
      code: 'SECRET-code',
      codeVerifier: 'SECRET-verifier',
      redirectUri: 'https://broker.example.com/api/callback',
    });
    expect(tokens.refreshToken).toBe(REFRESH_TOKEN);
    const form = sent.find((s) => s.method === 'POST')!.form;
    expect(form.get('grant_type')).toBe('authorization_code');
    expect(form.get('redirect_uri')).toBe('https://broker.example.com/api/callback');
    expect(form.has('code_verifier')).toBe(false);
    expect(await acs.accountOf(tokens)).toEqual({ account: 'clerk@city.example.org', tenant: REALM });
  });

  it('says when the site names no realm, and asks again next time', async () => {
    let calls = 0;
    const { fetch: fetchStub } = stubFetch((sent) => {
      if (sent.url.endsWith('/_vti_bin/client.svc')) {
        calls++;
        return calls === 1
          ? new Response('<html>', { status: 200 })
          : json(401, {}, { 'www-authenticate': CHALLENGE });
      }
      return json(200, ACS_SUCCESS);
    });
    const { dialect: acs } = dialect(fetchStub);
    const err = await acs.refresh({ refreshToken: REFRESH_TOKEN }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerError);
    expect(err).toMatchObject({ code: 'client_misconfigured' });
    expect((err as BrokerError).message).toMatch(/did not name its realm.*HTTP 200.*siteUrl/);
    await expect(acs.refresh({ refreshToken: REFRESH_TOKEN })).resolves.toMatchObject({ expiresIn: 43_199 });
    expect(calls).toBe(2);
  });

  it('classifies ACS errors by their number and RFC code, never quoting the description', async () => {
    const description = (n: string) => `${n}: something SECRET-add-in-client-secret= happened\r\nTrace ID: x`;
    const cases: Array<[number, object, string, string]> = [
      [
        401,
        { error: 'invalid_client', error_description: description('ACS50012') },
        'client_misconfigured',
        'invalid_client, ACS50012',
      ],
      [
        400,
        { error: 'invalid_grant', error_description: description('ACS50027') },
        'consent_required',
        'invalid_grant, ACS50027',
      ],
      [
        400,
        { error: 'invalid_request', error_description: description('ACS50001') },
        'client_misconfigured',
        'ACS50001',
      ],
      [503, { error: 'temporarily_unavailable' }, 'upstream_unavailable', 'HTTP 503'],
    ];
    for (const [status, body, code, said] of cases) {
      const { dialect: acs } = dialect(site(() => json(status, body)).fetch);
      const err = (await acs
        .refresh({ refreshToken: REFRESH_TOKEN })
        .catch((e: unknown) => e)) as BrokerError;
      expect(err.code).toBe(code);
      expect(err.message).toContain(said);
      expect(err.message).not.toContain('SECRET');
      expect(err.message).not.toContain('retired');
    }
  });

  it('calls a refusal for SharePoint Online after 2026-04-02 the ACS retirement, with the way out', async () => {
    const refused = () =>
      json(401, { error: 'invalid_client', error_description: 'ACS50012: Authentication failed.' });
    const after = dialect(
      site(refused).fetch,
      'https://contoso.sharepoint.com/sites/intranet',
      Date.UTC(2026, 3, 2),
    );
    const err = (await after.dialect
      .refresh({ refreshToken: REFRESH_TOKEN })
      .catch((e: unknown) => e)) as BrokerError;
    expect(err.code).toBe('client_misconfigured');
    expect(err.providerError).toEqual({ error: ACS_RETIRED_ERROR, status: 401 });
    expect(err.message).toContain('Azure ACS is retired for SharePoint Online');
    expect(err.message).toContain('provider "entra"');
    expect(err.message).toContain('https://contoso.sharepoint.com/AllSites.Manage');
    expect(err.message).toContain('docs/sharepoint.md');
    expect(after.logs.filter((l) => l.includes('"event":"acs.retired"'))).toHaveLength(1);
    // Once an hour in the log, however often it is asked.
    await after.dialect.refresh({ refreshToken: REFRESH_TOKEN }).catch(() => {});
    expect(after.logs.filter((l) => l.includes('"event":"acs.retired"'))).toHaveLength(1);

    // The day before, the same answer is an ordinary refusal.
    const before = dialect(
      site(refused).fetch,
      'https://contoso.sharepoint.com/sites/intranet',
      Date.UTC(2026, 3, 1),
    );
    const plain = (await before.dialect
      .refresh({ refreshToken: REFRESH_TOKEN })
      .catch((e: unknown) => e)) as BrokerError;
    expect(plain.providerError?.error).toBe('invalid_client');
    // An outage stays an outage, retired or not.
    const down = dialect(
      site(() => json(503, {})).fetch,
      'https://contoso.sharepoint.com',
      Date.UTC(2026, 5, 1),
    );
    const outage = (await down.dialect
      .refresh({ refreshToken: REFRESH_TOKEN })
      .catch((e: unknown) => e)) as BrokerError;
    expect(outage.code).toBe('upstream_unavailable');
  });

  it('refuses another scope and sets the hard expiry 6 calendar months on', async () => {
    const { dialect: acs } = dialect(site(() => json(200, ACS_SUCCESS)).fetch);
    await expect(acs.refresh({ refreshToken: REFRESH_TOKEN, scopes: ['Web.Read'] })).rejects.toMatchObject({
      code: 'invalid_request',
    });
    expect(acs.hardExpiry?.(Date.UTC(2026, 7, 31, 9))?.toISOString()).toBe('2027-02-28T09:00:00.000Z');
  });

  it('leaves the account empty when currentuser fails', async () => {
    const { fetch: fetchStub } = stubFetch(() => json(403, { error: { code: '-2147024891' } }));
    const { dialect: acs, logs } = dialect(fetchStub);
    const tokens = processTokenResponse(
      { status: 200, headers: new Headers(), bodyText: JSON.stringify(ACS_SUCCESS) },
      Date.now(),
      classifyOAuthError,
    );
    expect(await acs.accountOf(tokens)).toEqual({});
    expect(
      logs.some((l) => l.includes('"event":"acs.currentuser_failed"') && l.includes('"status":403')),
    ).toBe(true);
  });
});
