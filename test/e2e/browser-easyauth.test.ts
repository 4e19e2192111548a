import type { Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { launchChromium, skipBrowser, skippedTitle } from '../support/browser.js';
import { findLeaks, startStack } from './harness.js';

const TENANT = '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13';

/** What App Service's authentication module adds to every request of a signed-in admin. */
const ADMIN_PRINCIPAL = Buffer.from(
  JSON.stringify({
    auth_typ: 'aad',
    name_typ: 'name',
    role_typ: 'roles',
    claims: [
      { typ: 'name', val: 'Ada Admin' },
      {
        typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
        val: '44444444-4444-4444-8444-444444444444',
      },
      { typ: 'http://schemas.microsoft.com/identity/claims/tenantid', val: TENANT },
      { typ: 'roles', val: 'Broker.Admin' },
    ],
  }),
).toString('base64');

describe('the status page under App Service authentication, in a real browser', () => {
  it.skipIf(skipBrowser)(
    skipBrowser
      ? skippedTitle
      : 'signed-in admin: status → Connect → sign-in → Connected, no key in any link',
    { timeout: 30_000 },
    async () => {
      const stack = await startStack({
        connections: { mailbox: {} },
        env: { ADMIN_AUTH: 'easyauth', BROKER_TENANT_ID: TENANT, WEBSITE_AUTH_ENABLED: 'True' },
      });
      let browser: Browser | undefined;
      try {
        browser = await launchChromium();
        const anonymous = await browser.newContext({ javaScriptEnabled: false });
        // Nobody signed in: the broker sends the browser to the platform's sign-in.
        const page0 = await anonymous.newPage();
        const redirected: string[] = [];
        page0.on('request', (r) => redirected.push(r.url()));
        await page0.goto(`${stack.url}/api/status`).catch(() => undefined);
        expect(redirected).toContain(
          `${stack.url}/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent('/api/status')}`,
        );
        await anonymous.close();

        const context = await browser.newContext({ javaScriptEnabled: false });
        // As the platform does: the principal header rides on every request to the broker's host.
        await context.route(`${stack.url}/**`, (route) =>
          route.continue({
            headers: { ...route.request().headers(), 'x-ms-client-principal': ADMIN_PRINCIPAL },
          }),
        );
        const page = await context.newPage();
        const first = await page.goto(`${stack.url}/api/status`);
        expect(first?.status()).toBe(200);
        const link = page.locator('tbody tr a.button').first();
        await expect(link.getAttribute('href')).resolves.toBe('/api/start?connection=mailbox');
        await link.click();
        await page.waitForURL((url) => url.origin === new URL(stack.simUrl).origin);
        await page.locator('#account').fill('mailbox.owner@contoso.com');
        await Promise.all([
          page.waitForURL((url) => url.origin === stack.url && url.pathname === '/api/callback'),
          page.locator('#signin').click(),
        ]);
        await expect(page.locator('h1').textContent()).resolves.toBe('Connected');
        await page.goto(`${stack.url}/api/status`);
        await expect(page.locator('tbody tr .badge').first().textContent()).resolves.toBe('Connected');
        expect(await page.content()).not.toContain('code=');
        const stored = stack.logs
          .filter((l) => l.includes('"event":"consent.stored"'))
          .map((l) => JSON.parse(l));
        expect(stored.at(-1)).toMatchObject({ connection: 'mailbox', by: 'Ada Admin' });
        expect(await findLeaks(stack)).toEqual([]);
        await context.close();
      } finally {
        await browser?.close();
        await stack.close();
      }
    },
  );
});
