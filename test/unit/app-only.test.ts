import { describe, expect, it } from 'vitest';
import { type AppOnlyConnection, isAppOnly } from '../../src/lib/config/connections.js';
import { parseConnections } from '../../src/lib/config/load.js';
import { renderRemedy } from '../../src/lib/health/remedies.js';
import { parseOAuthError, type TokenEndpointFailure } from '../../src/lib/oauth/index.js';
import { clientAuthentication, clientCredentialsRequest } from '../../src/lib/oauth/request.js';
import { classifyEntraError } from '../../src/lib/providers/entra-errors.js';
import { allowedMailbox } from '../../src/lib/tokens/mailboxes.js';

const settings = { publicUrl: 'https://broker.example.com' };
const parse = (connections: unknown) =>
  parseConnections(JSON.stringify({ connections }), 'connections.json', settings);
const app = {
  provider: 'entra',
  flow: 'client_credentials',
  tenant: 'contoso.onmicrosoft.com',
  clientId: '6731de76-14a6-49ae-97bc-6eba6914391e',
  credential: { type: 'managedIdentity' },
  scopes: ['https://outlook.office365.com/.default'],
  mailboxes: ['desk1@contoso.com', 'Desk2@Contoso.com'],
};
const oauth2App = {
  provider: 'oauth2',
  flow: 'client_credentials',
  tokenEndpoint: 'https://id.example.com/token',
  clientId: 'ticket-engine',
  credential: { type: 'secret', secretName: 'ticket-secret' },
  scopes: ['https://api.example.com/.default'],
};

describe('app-only connections: the schema', () => {
  it('accepts client_credentials on entra (every credential type) and oauth2', () => {
    for (const credential of [
      { type: 'secret', secretName: 's' },
      { type: 'certificate', secretName: 'c' },
      { type: 'managedIdentity' },
    ]) {
      const c = parse({ desks: { ...app, credential } }).get('desks')!;
      expect(isAppOnly(c)).toBe(true);
    }
    expect(isAppOnly(parse({ api: oauth2App }).get('api')!)).toBe(true);
    expect(
      isAppOnly(
        parse({ api: { ...oauth2App, credential: { type: 'certificate', secretName: 'c' } } }).get('api')!,
      ),
    ).toBe(true);
    expect(
      isAppOnly(parse({ d: { ...app, flow: 'authorization_code', mailboxes: undefined } }).get('d')!),
    ).toBe(false);
  });

  it.each([
    [['https://outlook.office365.com/IMAP.AccessAsApp'], 'not .default'],
    [['https://outlook.office365.com/.default', 'https://graph.microsoft.com/.default'], 'two resources'],
    [['https://outlook.office365.com/.default', 'offline_access'], 'an extra scope'],
    [['.default'], 'no resource'],
  ])('refuses scopes %j (%s), naming the field', (scopes) => {
    expect(() => parse({ desks: { ...app, scopes } })).toThrow(
      /connection "desks": field "scopes": a client_credentials connection has exactly one scope/,
    );
    expect(() => parse({ api: { ...oauth2App, scopes } })).toThrow(/connection "api": field "scopes"/);
  });

  it('refuses the other mistakes, naming the field', () => {
    expect(() => parse({ desks: { ...app, credential: undefined } })).toThrow(
      /field "credential": .*needs a credential/,
    );
    expect(() => parse({ desks: { ...app, tenant: 'common' } })).toThrow(
      /field "tenant": .*names its tenant/,
    );
    expect(() => parse({ desks: { ...app, tenant: 'organizations' } })).toThrow(/field "tenant"/);
    expect(() => parse({ desks: { ...app, expectedAccount: 'a@contoso.com' } })).toThrow(
      /field "expectedAccount"/,
    );
    expect(() => parse({ desks: { ...app, mailboxes: ['not an address'] } })).toThrow(/field "mailboxes.0"/);
    expect(() => parse({ desks: { ...app, mailboxes: ['a@contoso.com\r\nx'] } })).toThrow(
      /field "mailboxes.0"/,
    );
    expect(() => parse({ desks: { ...app, mailboxes: [] } })).toThrow(/field "mailboxes"/);
    expect(() =>
      parse({ desks: { ...app, allowedScopes: ['https://graph.microsoft.com/.default', 'Mail.Read'] } }),
    ).toThrow(/field "allowedScopes.1": a client_credentials connection can only be asked for other/);
    expect(() => parse({ d: { ...app, flow: 'authorization_code' } })).toThrow(
      /field "mailboxes": applies to "flow": "client_credentials" only/,
    );
    expect(() => parse({ desks: { ...app, authority: 'http://login.example.com' } })).toThrow(
      /field "authority": must use https/,
    );
    expect(() => parse({ api: { ...oauth2App, tokenEndpoint: 'http://id.example.com/token' } })).toThrow(
      /field "tokenEndpoint": must use https/,
    );
    expect(() => parse({ api: { ...oauth2App, credential: { type: 'managedIdentity' } } })).toThrow(
      /field "credential": managedIdentity is for entra/,
    );
  });
});

describe('app-only connections: mailboxes', () => {
  const desks = parse({ desks: app }).get('desks')!;
  const delegated = parse({
    d: { ...app, flow: 'authorization_code', mailboxes: undefined, tenant: 'common' },
  }).get('d')!;

  it('matches case-insensitively and answers the configured spelling', () => {
    expect(allowedMailbox(desks, 'DESK1@contoso.com')).toBe('desk1@contoso.com');
    expect(allowedMailbox(desks, 'desk2@contoso.com')).toBe('Desk2@Contoso.com');
  });

  it('refuses any other mailbox, and any user on a delegated connection', () => {
    expect(() => allowedMailbox(desks, 'ceo@contoso.com')).toThrow(
      expect.objectContaining({ code: 'mailbox_not_allowed' }),
    );
    expect(() => allowedMailbox(delegated, 'desk1@contoso.com')).toThrow(
      expect.objectContaining({ code: 'mailbox_not_allowed' }),
    );
  });
});

describe('app-only connections: the protocol request', () => {
  it('is RFC 6749 §4.4.2 with the client authentication, and may be repeated', () => {
    const request = clientCredentialsRequest(
      'https://login.example/t/oauth2/v2.0/token',
      'https://x/.default',
      {
        auth: clientAuthentication('client_secret_post', 'id', 'secret'),
      },
    );
    expect(request).toMatchObject({
      method: 'POST',
      form: {
        grant_type: 'client_credentials',
        scope: 'https://x/.default',
        client_id: 'id',
        client_secret: 'secret',
      },
      redeemsGrant: false,
    });
    expect(request.form?.refresh_token).toBeUndefined();
  });
});

function entraFailure(error: string, aadsts: number, status = 400): TokenEndpointFailure {
  const body = JSON.stringify({ error, error_description: `AADSTS${aadsts}: text`, error_codes: [aadsts] });
  return { status, oauthError: parseOAuthError(body) };
}

describe('app-only connections: classification and remedies', () => {
  const desks = parse({ desks: { ...app, credential: { type: 'secret', secretName: 'desk-secret' } } }).get(
    'desks',
  )! as AppOnlyConnection;
  const ctx = { connection: desks, publicUrl: 'https://broker.example.com' };

  it('classifies "no service principal" and a non-.default scope', () => {
    expect(classifyEntraError(entraFailure('invalid_client', 7000229, 401)).code).toBe(
      'client_misconfigured',
    );
    expect(classifyEntraError(entraFailure('invalid_scope', 1002012)).code).toBe('client_misconfigured');
    expect(
      classifyEntraError(entraFailure('invalid_scope', 1002012), { otherScope: 'x/.default' }).code,
    ).toBe('invalid_request');
  });

  it.each([
    ['invalid_client', 7000229, 'admin_consent', /no service principal in tenant contoso\.onmicrosoft\.com/],
    ['unauthorized_client', 700016, 'admin_consent', /adminconsent\?client_id=6731de76/],
    ['invalid_grant', 65001, 'admin_consent', /no admin consent in tenant contoso/],
    ['invalid_client', 7000215, 'new_client_secret', /broker secrets set desk-secret/],
    ['invalid_client', 7000222, 'new_client_secret', /expired/],
    ['invalid_scope', 1002012, 'fix_app_registration', /one "\{resource\}\/\.default"/],
    ['invalid_grant', 50173, 'fix_app_registration', /application permissions/],
    ['access_denied', 53003, 'conditional_access', /workload identities/],
    ['temporarily_unavailable', 90033, 'wait', /retries by itself/],
  ] as const)('%s AADSTS%s → %s', (error, aadsts, kind, text) => {
    // Classified once, with the app-only context, as the dialects do; then put into words.
    const err = classifyEntraError(
      entraFailure(error, aadsts, error === 'temporarily_unavailable' ? 503 : 400),
      {
        appOnly: true,
      },
    );
    const remedy = renderRemedy(err.failure!, ctx);
    expect(remedy.kind).toBe(kind);
    expect(remedy.text).toMatch(text);
    // Nobody signs in to an app-only connection: no remedy sends a person to /api/start.
    expect(remedy.text).not.toContain('/api/start');
  });
});
