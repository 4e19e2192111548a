import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consent, parseForm } from '../fakes/consent-client.js';
import { acceptInvitation, openLink, postForm, signInAndReturn } from '../support/invitation-client.js';
import { findLeaks, type Stack, startStack } from './harness.js';

const DAY = 86_400_000;
const OWNER = 'desk7@contoso.com';

interface Created {
  id: string;
  url: string;
  expiresAt: string;
  replace: boolean;
}

/**
 * DESIGN.md "Invitations", through the embedded host over real HTTP: an admin makes a link, the owner
 * of the mailbox opens it with no key, presses the button and signs in at the simulator; every bad
 * link, form and account is a 4xx with nothing stored and nothing echoed.
 */
describe('invitations', () => {
  let stack: Stack;
  /** Every invitation URL the tests were handed: none may reach a log line or a file. */
  const tokens: string[] = [];

  const invite = async (connection: string, body: Record<string, unknown> = {}): Promise<Created> => {
    const res = await stack.api(`/api/connections/${connection}/invitations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as Created;
    tokens.push(created.url.split('/').pop()!);
    return created;
  };
  const list = async (connection: string) =>
    (
      (await (await stack.api(`/api/connections/${connection}/invitations`)).json()) as {
        invitations: Array<Record<string, unknown>>;
      }
    ).invitations;
  const stored = (connection: string) => stack.local.broker.store.getSecret(`rt-${connection}`);
  const logEvents = (event: string) =>
    stack.logs
      .filter((l) => l.includes(`"event":"${event}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    stack = await startStack({
      connections: {
        desk7: {
          expectedAccount: OWNER,
          displayName: undefined,
          scopes: [
            'https://outlook.office.com/IMAP.AccessAsUser.All',
            'https://outlook.office.com/SMTP.Send',
          ],
        },
        desk8: {},
        desk9: {},
        open: {},
      },
    });
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack, tokens)).toEqual([]));

  it('creates a link (201) whose page names the connection, the account, the scopes in words and the expiry', async () => {
    const created = await invite('desk7', { note: 'for Kim at the front desk' });
    expect(created.url).toMatch(new RegExp(`^${stack.url}/api/connect/[A-Za-z0-9_-]{43}$`));
    expect(created.replace).toBe(false);
    expect(Date.parse(created.expiresAt)).toBe(stack.clock.now() + 7 * DAY);

    const { res, html, cookie } = await openLink(created.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(html).toContain('desk7');
    expect(html).toContain(OWNER);
    expect(html).toContain('read and manage your mail over IMAP');
    expect(html).toContain('send mail as you over SMTP');
    expect(html).toContain(created.expiresAt.slice(0, 16).replace('T', ' '));
    expect(html).toContain('Continue to sign in');
    expect(html).toMatch(/<form method="post" action="\/api\/connect\/[A-Za-z0-9_-]{43}">/);
    const setCookie = res.headers.getSetCookie().join('\n');
    expect(setCookie).toMatch(/broker_af=[A-Za-z0-9_-]{43}/);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(cookie).not.toBe('');
    // The GET began nothing.
    expect(stack.sim.issuedSecrets()).toHaveLength(0);
    expect(logEvents('consent.started')).toHaveLength(0);

    const listed = await list('desk7');
    expect(listed).toEqual([
      expect.objectContaining({
        id: created.id,
        state: 'pending',
        note: 'for Kim at the front desk',
        replace: false,
      }),
    ]);
    expect(JSON.stringify(listed)).not.toContain(created.url.split('/').pop());
    expect(listed[0]).not.toHaveProperty('tokenHash');
    expect(logEvents('invitation.created').at(-1)).toMatchObject({
      connection: 'desk7',
      invitation: created.id,
      by: 'function-key',
    });
  });

  it('the owner, with no key, continues and signs in: connected, and the link is used up', async () => {
    const created = await invite('desk7');
    const done = await acceptInvitation(created.url, OWNER);
    expect(done.status).toBe(200);
    expect(done.body).toContain(OWNER);
    expect((await stored('desk7'))?.tags).toMatchObject({ account: OWNER, status: 'connected' });
    expect(logEvents('invitation.used').at(-1)).toMatchObject({
      connection: 'desk7',
      invitation: created.id,
      account: OWNER,
    });
    expect((await list('desk7')).find((i) => i.id === created.id)).toMatchObject({
      state: 'used',
      usedBy: OWNER,
    });

    // Reused: the same 410 page for GET and POST, nothing begun.
    const again = await openLink(created.url);
    expect(again.res.status).toBe(410);
    expect(again.html).toContain('invitation_invalid');
    expect(again.html).toContain('Ask whoever sent it for a new one');
  });

  it('forged, truncated, expired, revoked and reused links all get the same 410, nothing echoed', async () => {
    const used = tokens.at(-1)!;
    const expiring = await invite('desk8', { expiresIn: 'PT1H' });
    const revoked = await invite('desk8');
    expect(
      (await stack.api(`/api/connections/desk8/invitations/${revoked.id}`, { method: 'DELETE' })).status,
    ).toBe(204);
    expect(logEvents('invitation.revoked').at(-1)).toMatchObject({
      connection: 'desk8',
      invitation: revoked.id,
    });
    stack.clock.advance(3_600_001);
    const forged = 'A'.repeat(43);
    const cases = [
      forged,
      expiring.url.split('/').pop()!.slice(0, 20),
      expiring.url.split('/').pop()!,
      revoked.url.split('/').pop()!,
      used,
      '%3Cscript%3E',
      'x'.repeat(600),
    ];
    const bodies: string[] = [];
    for (const token of cases) {
      const page = await openLink(`${stack.url}/api/connect/${token}`);
      expect(page.res.status, token).toBe(410);
      expect(page.html).not.toContain(decodeURIComponent(token));
      bodies.push(page.html.replace(/nonce-[^']+/g, ''));
      const json = await fetch(`${stack.url}/api/connect/${token}`, {
        headers: { accept: 'application/json' },
      });
      expect(json.status).toBe(410);
      expect(json.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await json.json()) as { code: string }).code).toBe('invitation_invalid');
    }
    // One answer for all: the page does not tell which case it was.
    expect(new Set(bodies).size).toBe(1);
    expect(
      (await stack.api('/api/connections/desk8/invitations').then((r) => r.json())) as unknown,
    ).toMatchObject({
      invitations: expect.arrayContaining([
        expect.objectContaining({ id: expiring.id, state: 'expired' }),
        expect.objectContaining({ id: revoked.id, state: 'revoked' }),
      ]),
    });
    expect(await stored('desk8')).toBeUndefined();
  });

  it('a POST without, or with a wrong, anti-forgery token, or sent cross-site: 403, nothing begun', async () => {
    const created = await invite('desk9');
    const { html, cookie } = await openLink(created.url);
    const { action, fields } = parseForm(html, created.url);
    const started = () => logEvents('consent.started').length;
    const before = started();

    const noCookie = await postForm(action, fields, '');
    const noField = await postForm(action, new URLSearchParams(), cookie);
    const wrong = await postForm(action, new URLSearchParams({ af: 'B'.repeat(43) }), cookie);
    const crossSite = await postForm(action, fields, cookie, { 'sec-fetch-site': 'cross-site' });
    const sameSite = await postForm(action, fields, cookie, { 'sec-fetch-site': 'same-site' });
    for (const res of [noCookie, noField, wrong, crossSite, sameSite]) {
      expect(res.status).toBe(403);
      expect(res.headers.get('location')).toBeNull();
      const body = await res.text();
      expect(body).toContain('forbidden');
      expect(body).not.toContain(fields.get('af')!);
    }
    // Not a form at all, or a huge one: 4xx too.
    const json = await fetch(action, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, 'sec-fetch-site': 'same-origin' },
      body: '{}',
    });
    expect(json.status).toBe(400);
    const huge = await postForm(
      action,
      new URLSearchParams({ af: fields.get('af')!, pad: 'x'.repeat(20_000) }),
      cookie,
    );
    expect(huge.status).toBe(413);
    expect(started()).toBe(before);
    expect((await list('desk9'))[0]).toMatchObject({ state: 'pending' });

    // A browser that sends no Sec-Fetch-Site (older ones) still passes with the token.
    const ok = await fetch(action, {
      method: 'POST',
      body: fields,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      redirect: 'manual',
    });
    expect(ok.status).toBe(302);
    expect(started()).toBe(before + 1);
  });

  it('another account than the expected one: 403 account_mismatch, nothing stored, the link still works', async () => {
    const created = await invite('desk7');
    const before = await stored('desk7');
    const wrong = await acceptInvitation(created.url, 'mallory@contoso.com');
    expect(wrong.status).toBe(403);
    expect(wrong.body).toContain('account_mismatch');
    expect((await stored('desk7'))?.version).toBe(before?.version);
    expect((await list('desk7')).find((i) => i.id === created.id)).toMatchObject({ state: 'pending' });
    expect((await acceptInvitation(created.url, OWNER)).status).toBe(200);
  });

  it('pinning by the last consent holds unless the invitation has replace: true', async () => {
    expect(
      (await consent(stack.url, stack.local.functionKey, 'open', { account: 'alice@contoso.com' })).status,
    ).toBe(200);
    const plain = await invite('open');
    const refused = await acceptInvitation(plain.url, 'bob@contoso.com');
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('account_mismatch');
    expect((await stored('open'))?.tags.account).toBe('alice@contoso.com');

    const replacing = await invite('open', { replace: true });
    expect(replacing.replace).toBe(true);
    const page = await openLink(replacing.url);
    expect(page.html).toContain('replaces the account now connected');
    expect((await acceptInvitation(replacing.url, 'bob@contoso.com')).status).toBe(200);
    expect((await stored('open'))?.tags.account).toBe('bob@contoso.com');
  });

  it('two sign-ins begun from one link: the first stores, the second gets 410 and stores nothing', async () => {
    const created = await invite('desk8');
    const first = await openLink(created.url);
    const form = parseForm(first.html, created.url);
    const a = await postForm(form.action, form.fields, first.cookie);
    const b = await postForm(form.action, form.fields, first.cookie);
    expect((await signInAndReturn(a, 'carol@contoso.com')).status).toBe(200);
    const version = (await stored('desk8'))?.version;
    // The same account again (another would already fail the pinning to carol): the link is spent.
    const second = await signInAndReturn(b, 'carol@contoso.com');
    expect(second.status).toBe(410);
    expect(second.body).toContain('invitation_invalid');
    expect((await stored('desk8'))?.version).toBe(version);
    expect((await stored('desk8'))?.tags.account).toBe('carol@contoso.com');
  });

  it('revoked between the button and the callback: 410, nothing stored', async () => {
    const created = await invite('desk9');
    const page = await openLink(created.url);
    const form = parseForm(page.html, created.url);
    const post = await postForm(form.action, form.fields, page.cookie);
    await stack.api(`/api/connections/desk9/invitations/${created.id}`, { method: 'DELETE' });
    const before = await stored('desk9');
    const res = await signInAndReturn(post, 'erin@contoso.com');
    expect(res.status).toBe(410);
    expect((await stored('desk9'))?.version).toBe(before?.version);
  });

  it('admin routes validate: bad bodies 400, unknown connection or invitation 404, no key 401, big body 413', async () => {
    const post = (connection: string, body: string) =>
      stack.api(`/api/connections/${connection}/invitations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    for (const body of [
      '{"expiresIn":"P31D"}',
      '{"expiresIn":"PT0S"}',
      '{"expiresIn":"soon"}',
      `{"note":"${'n'.repeat(201)}"}`,
      '{"replace":"yes"}',
      '{"token":"mine"}',
      '{',
      '[]',
    ]) {
      const res = await post('desk7', body);
      expect(res.status, body).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_request');
    }
    const longest = await post('desk7', '{"expiresIn":"P30D"}');
    expect(longest.status).toBe(201);
    const created = (await longest.json()) as Created;
    tokens.push(created.url.split('/').pop()!);
    expect(Date.parse(created.expiresAt)).toBe(stack.clock.now() + 30 * DAY);
    expect((await post('nope', '{}')).status).toBe(404);
    expect((await post('NOT_AN_ID', '{}')).status).toBe(404);
    expect((await post('desk7', `{"note":"${'x'.repeat(70_000)}"}`)).status).toBe(413);
    expect(
      (await stack.api('/api/connections/desk7/invitations/AAAAAAAAAAAAAAAAAAAAAA', { method: 'DELETE' }))
        .status,
    ).toBe(404);
    expect((await stack.api('/api/connections/desk7/invitations/bad', { method: 'DELETE' })).status).toBe(
      404,
    );
    expect((await stack.api('/api/connections/desk7/invitations', { key: null })).status).toBe(401);
    expect(
      (await stack.api('/api/connections/desk7/invitations', { method: 'POST', key: null, body: '{}' }))
        .status,
    ).toBe(401);
    expect((await list('desk7')).find((i) => i.id === created.id)).toMatchObject({ state: 'pending' });
  });
});

describe('/api/start: no consent begins on a cross-site GET', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ connections: { support: {} } });
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack)).toEqual([]));

  const start = (query: string, headers: Record<string, string>) =>
    stack.api(`/api/start?connection=support${query}`, { headers: { accept: 'text/html', ...headers } });

  it('the reported CSRF: a cross-site GET with replace=true answers a confirm page, not a redirect', async () => {
    const res = await start('&replace=true', {
      'sec-fetch-site': 'cross-site',
      'sec-fetch-mode': 'navigate',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    const html = await res.text();
    expect(html).toContain('Continue to sign in');
    expect(html).toContain('replaces the account now connected');
    expect(res.headers.getSetCookie().join()).not.toContain('broker_consent_');
    expect(stack.logs.filter((l) => l.includes('"consent.started"'))).toHaveLength(0);
  });

  it('same-site, and a typed URL with replace=true, confirm too; scripts and same-origin redirect as before', async () => {
    expect((await start('', { 'sec-fetch-site': 'same-site' })).status).toBe(200);
    expect((await start('', { 'sec-fetch-site': 'cross-site' })).status).toBe(200);
    expect((await start('&replace=true', { 'sec-fetch-site': 'none' })).status).toBe(200);
    expect((await start('', { 'sec-fetch-site': 'none' })).status).toBe(302);
    expect((await start('&replace=true', { 'sec-fetch-site': 'same-origin' })).status).toBe(302);
    expect((await start('&replace=true', {})).status).toBe(302);
    expect((await stack.api('/api/start?connection=support&replace=true')).status).toBe(302);
  });

  it("the confirm page's button begins consent; a POST without the token or from another site does not", async () => {
    const url = `${stack.url}/api/start?connection=support&replace=true&code=${stack.local.functionKey}`;
    const page = await fetch(url, { headers: { accept: 'text/html', 'sec-fetch-site': 'cross-site' } });
    const html = await page.text();
    const cookie = page.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const { action, fields } = parseForm(html, url);
    expect(new URL(action).searchParams.get('replace')).toBe('true');
    const before = stack.logs.filter((l) => l.includes('"consent.started"')).length;
    const forged = await postForm(action, new URLSearchParams(), cookie);
    expect(forged.status).toBe(403);
    const crossSite = await postForm(action, fields, cookie, { 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    expect(stack.logs.filter((l) => l.includes('"consent.started"'))).toHaveLength(before);
    const ok = await postForm(action, fields, cookie);
    expect(ok.status).toBe(302);
    expect((await signInAndReturn(ok, 'frank@contoso.com')).status).toBe(200);
  });
});
