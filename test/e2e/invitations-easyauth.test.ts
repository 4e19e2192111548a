import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseForm } from '../fakes/consent-client.js';
import { ADA, clientPrincipal } from '../support/easy-auth.js';
import { acceptInvitation, postForm } from '../support/invitation-client.js';
import { findLeaks, type Stack, startStack } from './harness.js';

const TENANT = '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13';

/**
 * The setting of the security review's finding: ADMIN_AUTH=easyauth, an admin signed in at App
 * Service, and a page on another site navigating that admin's browser to `/api/start`.
 */
describe('invitations and /api/start under ADMIN_AUTH=easyauth', () => {
  let stack: Stack;
  const tokens: string[] = [];
  const admin = { 'x-ms-client-principal': clientPrincipal(TENANT, ['Broker.Admin']) };
  beforeAll(async () => {
    stack = await startStack({
      connections: { support: {}, desk: { expectedAccount: 'desk@contoso.com' } },
      env: { ADMIN_AUTH: 'easyauth', BROKER_TENANT_ID: TENANT, WEBSITE_AUTH_ENABLED: 'True' },
    });
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack, tokens)).toEqual([]));

  it('a signed-in admin navigated cross-site to /api/start?…&replace=true gets a confirm page, not the provider', async () => {
    const url = `${stack.url}/api/start?connection=support&replace=true`;
    const res = await fetch(url, {
      headers: {
        ...admin,
        accept: 'text/html',
        'sec-fetch-site': 'cross-site',
        'sec-fetch-mode': 'navigate',
      },
      redirect: 'manual',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    const html = await res.text();
    // Another site's page cannot press the button for them: a cross-site POST is refused too.
    const { action, fields } = parseForm(html, url);
    const forged = await postForm(action, fields, '', { ...admin, 'sec-fetch-site': 'cross-site' });
    expect(forged.status).toBe(403);
    expect(stack.logs.filter((l) => l.includes('"consent.started"'))).toHaveLength(0);
    // The admin's own press (same origin, cookie and field) begins it.
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    expect((await postForm(action, fields, cookie, admin)).status).toBe(302);
  });

  it('admins make invitations (by = the person); others are refused; the owner needs no sign-in', async () => {
    const post = (headers: Record<string, string>) =>
      stack.api('/api/connections/desk/invitations', { method: 'POST', key: null, headers, body: '{}' });
    expect((await post({})).status).toBe(401);
    const noRole = await post({ 'x-ms-client-principal': clientPrincipal(TENANT, []) });
    expect(noRole.status).toBe(403);
    expect(((await noRole.json()) as { code: string }).code).toBe('forbidden');
    const res = await post(admin);
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; url: string };
    tokens.push(created.url.split('/').pop()!);
    const listed = (await (
      await stack.api('/api/connections/desk/invitations', { key: null, headers: admin })
    ).json()) as {
      invitations: Array<{ createdBy: unknown }>;
    };
    expect(listed.invitations[0]!.createdBy).toEqual({ name: 'ada@contoso.com', id: ADA });
    expect(stack.logs.some((l) => l.includes('"invitation.created"') && l.includes('ada@contoso.com'))).toBe(
      true,
    );

    // The owner: no principal header, no key.
    const done = await acceptInvitation(created.url, 'desk@contoso.com');
    expect(done.status).toBe(200);
    expect((await stack.local.broker.store.getSecret('rt-desk'))?.tags.account).toBe('desk@contoso.com');
  });
});
