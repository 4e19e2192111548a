import { describe, expect, it } from 'vitest';
import { parseConnections } from '../../src/lib/config/load.js';
import {
  ANSWER_OF_CLASS,
  type BrokerError,
  type FailureRow,
  REMEDIES_OF_ANSWER,
} from '../../src/lib/errors.js';
import { remedyFor, remedyForError } from '../../src/lib/health/remedies.js';
import {
  classifyOAuthError,
  OAUTH_ERRORS,
  statusRow,
  type TokenEndpointFailure,
  UNKNOWN_ROW,
} from '../../src/lib/oauth/index.js';
import { classifyEntraError, ENTRA_ERRORS, PROPAGATING } from '../../src/lib/providers/entra-errors.js';
import {
  ACS_ERRORS,
  ACS_RETIRED_ERROR,
  classifyAcsError,
} from '../../src/lib/providers/sharepoint-acs-errors.js';
import { failureTags, fromTags, type GrantTags } from '../../src/lib/tokens/grant-store.js';

/**
 * docs/design.md, "Telling people what to do": one table per provider gives each provider code its
 * class, HTTP answer and remedy together. This walks every row of every table, classifies what the
 * provider would send for it (the connection's own scopes, and an extra `scope=`), and proves that
 * the answer and the advice agree: on the problem body of `/api/token`, and on the status page after
 * the failure was stored in the grant's tags.
 */
const PUBLIC_URL = 'https://broker.example.com';
const connections = parseConnections(
  JSON.stringify({
    connections: {
      mail: {
        provider: 'entra',
        tenant: 'contoso.com',
        clientId: 'app-123',
        credential: { type: 'secret', secretName: 'mail-secret' },
        scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All'],
        expectedAccount: 'support@contoso.com',
      },
    },
  }),
  'connections.json',
  { publicUrl: PUBLIC_URL },
);
const ctx = { connection: connections.get('mail')!, publicUrl: PUBLIC_URL };
const EXTRA = 'https://graph.microsoft.com/Sites.Read.All';

type Classify = (failure: TokenEndpointFailure, otherScope?: string) => BrokerError;
const base = { connectionId: 'mail', secretName: 'mail-secret', credentialType: 'secret' as const };
const oauth2: Classify = (f, otherScope) => classifyOAuthError(f, { ...base, otherScope });
const entra: Classify = (f, otherScope) => classifyEntraError(f, { ...base, otherScope });
const acs =
  (retired: boolean): Classify =>
  (f, otherScope) =>
    classifyAcsError(f, { ...base, otherScope, siteHost: 'contoso.example.com', retired });

/** Every row, with the answer a provider would give for it. */
const rows: Array<[string, FailureRow, TokenEndpointFailure, Classify]> = [
  ...Object.entries(OAUTH_ERRORS).map(
    ([error, row]) =>
      [`oauth2 ${error}`, row, { status: 400, oauthError: { error } }, oauth2] as [
        string,
        FailureRow,
        TokenEndpointFailure,
        Classify,
      ],
  ),
  ...Object.entries(ENTRA_ERRORS).map(
    ([n, row]) =>
      [
        `entra AADSTS${n}`,
        row,
        { status: 400, oauthError: { error: 'invalid_request', aadsts: Number(n) } },
        entra,
      ] as [string, FailureRow, TokenEndpointFailure, Classify],
  ),
  ...Object.entries(ACS_ERRORS).map(([key, row]) => {
    const retired = key === ACS_RETIRED_ERROR;
    const failure: TokenEndpointFailure = {
      status: 400,
      oauthError: { error: 'invalid_client', errorDescription: retired ? 'gone' : `${key}: refused` },
    };
    return [`acs ${key}`, row, failure, acs(retired)] as [string, FailureRow, TokenEndpointFailure, Classify];
  }),
  ...[401, 403, 404, 429, 500, 503].map(
    (status) =>
      [`HTTP ${status}`, statusRow(status)!, { status }, oauth2] as [
        string,
        FailureRow,
        TokenEndpointFailure,
        Classify,
      ],
  ),
  ['unknown', UNKNOWN_ROW, { status: 400, oauthError: { error: 'something_new' } }, oauth2],
];

describe('every table row: the answer and the advice agree', () => {
  it.each(rows)('%s', (_name, row, failure, classify) => {
    // The connection's own scopes: the row as written (a scope error is then the configuration's).
    const own = classify(failure);
    expect(own.failure).toBeDefined();
    expect(own.failure!.remedy).toBe(row.remedy);
    expect(own.failure!.reason).toBe(row.reason);
    expect(own.code).toBe(row.class === 'scope' ? 'client_misconfigured' : ANSWER_OF_CLASS[row.class]);

    // An extra `scope=`: a dead grant stays dead, missing consent becomes the caller's, never silent.
    const extra = classify(failure, EXTRA);
    for (const err of [own, extra]) {
      expect(err.code).toBe(ANSWER_OF_CLASS[err.failure!.class]);
      expect(REMEDIES_OF_ANSWER[err.code], `${err.code} with ${err.failure!.remedy}`).toContain(
        err.failure!.remedy,
      );
      const remedy = remedyForError(err, ctx);
      expect(remedy?.kind).toBe(err.failure!.remedy);
      expect(remedy?.text).toMatch(/^Connection mail: /);
      expect(remedy?.text).not.toMatch(/undefined|null|\[object/);
      if (err.code === 'upstream_unavailable') expect(err.retryAfter).toBeGreaterThan(0);
    }
    if (extra.code === 'invalid_request') expect(remedyForError(extra, ctx)?.text).toContain(EXTRA);

    // Stored: the status page says what the problem body said, from structured tags, not by parsing.
    if (own.code === 'consent_required' || own.code === 'client_misconfigured') {
      const raw: Record<string, string> = {};
      const tags: GrantTags = {
        status: own.code === 'consent_required' ? 'needs_consent' : 'connected',
        ...failureTags(own),
      };
      for (const [k, v] of Object.entries(tags)) if (typeof v === 'string') raw[k] = v;
      const stored = remedyFor({ tags: fromTags(raw), deadlines: [] }, ctx, { now: 0, warnBeforeMs: 0 });
      expect(stored).toEqual(remedyForError(own, ctx));
    }
  });

  it('a managed identity still propagating (AADSTS70021) is a wait, not a fix', () => {
    const err = classifyEntraError(
      { status: 400, oauthError: { error: 'invalid_request', aadsts: 70021 } },
      { connectionId: 'mail', credentialType: 'managedIdentity' },
    );
    expect(err.failure).toEqual(PROPAGATING);
    expect(err.code).toBe('upstream_unavailable');
  });

  it('a refused client with no secret to renew is its registration, not a new secret', () => {
    const err = classifyOAuthError(
      { status: 401, oauthError: { error: 'invalid_client' } },
      { connectionId: 'mail', credentialType: 'none' },
    );
    expect(err.code).toBe('client_misconfigured');
    expect(err.failure).toMatchObject({ remedy: 'fix_app_registration', hint: 'credential' });
  });
});
