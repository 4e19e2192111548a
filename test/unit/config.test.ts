import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/lib/config/duration.js';
import { connectionsJsonSchema } from '../../src/lib/config/json-schema.js';
import { parseConnections } from '../../src/lib/config/load.js';
import { loadSettings } from '../../src/lib/config/settings.js';
import { ConfigError } from '../../src/lib/errors.js';

const settings = { publicUrl: 'https://broker.example.com' };
const parse = (connections: unknown) =>
  parseConnections(JSON.stringify({ connections }), 'connections.json', settings);
const entra = { provider: 'entra', clientId: 'abc', scopes: ['User.Read'] };

describe('connections', () => {
  it('applies the documented defaults', () => {
    const c = parse({ support: entra }).get('support')!;
    expect(c).toMatchObject({
      id: 'support',
      provider: 'entra',
      flow: 'authorization_code',
      authority: 'https://login.microsoftonline.com',
      redirectUri: 'https://broker.example.com/api/callback',
      rotateAfter: 'PT24H',
      rotateAfterMs: 24 * 3600 * 1000,
    });
  });

  it('names the connection and the field of an invalid entry', () => {
    expect(() => parse({ support: { ...entra, tenant: 'bad tenant!' } })).toThrow(
      /connection "support": field "tenant": must be common/,
    );
    expect(() => parse({ support: { ...entra, scopes: [] } })).toThrow(
      /connection "support": field "scopes"/,
    );
    expect(() => parse({ support: { ...entra, colour: 'red' } })).toThrow(/connection "support"/);
    expect(() => parse({ support: { ...entra, rotateAfter: 'P6M' } })).toThrow(
      /field "rotateAfter": must be an ISO-8601/,
    );
  });

  it('refuses plain http except on loopback', () => {
    expect(() => parse({ a: { ...entra, authority: 'http://login.example.com' } })).toThrow(
      /connection "a": field "authority": must use https/,
    );
    for (const host of ['127.0.0.1:8080', 'localhost:1', '[::1]:9', '127.9.9.9']) {
      expect(parse({ a: { ...entra, authority: `http://${host}` } }).get('a')!.provider).toBe('entra');
    }
  });

  it('refuses bad connection ids and unknown providers', () => {
    expect(() => parse({ Support: entra })).toThrow(/lowercase/);
    expect(() => parse({ a: { ...entra, provider: 'okta' } })).toThrow(/connection "a"/);
  });

  it('accepts the sharepoint-acs and oauth2 shapes of DESIGN.md', () => {
    const all = parse({
      sp: {
        provider: 'sharepoint-acs',
        siteUrl: 'https://contoso.sharepoint.com',
        clientId: 'x',
        credential: { type: 'secret', secretName: 'sp-secret' },
        scopes: ['AllSites.Manage'],
      },
      gen: { provider: 'oauth2', issuer: 'https://id.example.com', clientId: 'x', scopes: ['api.read'] },
    });
    expect(all.get('sp')).toMatchObject({ accessControlUrl: 'https://accounts.accesscontrol.windows.net' });
    expect(() => parse({ gen: { provider: 'oauth2', clientId: 'x', scopes: ['a'] } })).toThrow(/issuer/);
  });

  it('checks what the sharepoint-acs and oauth2 providers need', () => {
    const sp = {
      provider: 'sharepoint-acs',
      siteUrl: 'https://contoso.sharepoint.com',
      clientId: 'x',
      scopes: ['Web.Read'],
    };
    expect(() => parse({ sp })).toThrow(/connection "sp": field "credential"/);
    const secret = { type: 'secret', secretName: 'generic-secret' };
    const explicit = {
      provider: 'oauth2',
      tokenEndpoint: 'https://id.example.com/token',
      clientId: 'x',
      scopes: ['a'],
    };
    expect(() => parse({ gen: explicit })).toThrow(/field "authorizationEndpoint": needs issuer/);
    expect(() => parse({ gen: { ...explicit, flow: 'device_code' } })).toThrow(
      /field "deviceAuthorizationEndpoint": needs issuer/,
    );
    expect(() =>
      parse({
        gen: {
          ...explicit,
          authorizationEndpoint: 'https://id.example.com/authorize',
          tokenEndpointAuthMethod: 'client_secret_post',
        },
      }),
    ).toThrow(/field "tokenEndpointAuthMethod": applies only to a client with a credential/);
    expect(() =>
      parse({
        gen: {
          ...explicit,
          issuer: 'https://id.example.com',
          credential: secret,
          tokenEndpointAuthMethod: 'private_key_jwt',
        },
      }),
    ).toThrow(/field "tokenEndpointAuthMethod"/);
    expect(
      parse({
        gen: {
          ...explicit,
          issuer: 'https://id.example.com',
          credential: secret,
          tokenEndpointAuthMethod: 'client_secret_post',
        },
      }).get('gen'),
    ).toMatchObject({ tokenEndpointAuthMethod: 'client_secret_post', flow: 'authorization_code' });
  });

  it('says when the file is not JSON', () => {
    expect(() => parseConnections('{', 'connections.json', settings)).toThrow(ConfigError);
  });

  it('validates the committed example', () => {
    const text = readFileSync(new URL('../../connections.example.json', import.meta.url), 'utf8');
    expect(parseConnections(text, 'example', settings).size).toBeGreaterThan(0);
  });

  it('keeps connections.schema.json in step with the zod schema (npm run schema regenerates it)', () => {
    const committed = readFileSync(new URL('../../connections.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(connectionsJsonSchema());
  });
});

describe('settings', () => {
  it('has the documented defaults', () => {
    const s = loadSettings({});
    expect(s).toMatchObject({
      dataDir: '.broker',
      publicUrl: 'http://localhost:7071',
      rotationSchedule: '0 */5 * * * *',
      refreshAheadMs: 5 * 60 * 1000,
      port: 7071,
    });
    expect(loadSettings({ WEBSITE_HOSTNAME: 'b.azurewebsites.net' }).publicUrl).toBe(
      'https://b.azurewebsites.net',
    );
    expect(loadSettings({ PORT: '8080' }).publicUrl).toBe('http://localhost:8080');
  });

  it('names the bad setting', () => {
    expect(() => loadSettings({ REFRESH_AHEAD: 'five minutes' })).toThrow(/setting REFRESH_AHEAD/);
    expect(() => loadSettings({ ROTATION_SCHEDULE: '*/5 * * * *' })).toThrow(
      /setting ROTATION_SCHEDULE: .*6 fields/,
    );
    expect(() => loadSettings({ BROKER_PUBLIC_URL: 'http://broker.example.com' })).toThrow(
      /BROKER_PUBLIC_URL/,
    );
  });
});

describe('ISO-8601 durations', () => {
  it.each([
    ['PT24H', 86_400_000],
    ['PT5M', 300_000],
    ['P1DT1H', 90_000_000],
    ['P2W', 14 * 86_400_000],
    ['PT0.5S', 500],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['P', 'PT', '24H', 'P6M', 'P1Y', 'PT-5M'])('refuses %s', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});
