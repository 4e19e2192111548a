import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import { launchChromium, skipBrowser, skippedTitle } from '../support/browser.js';
import { findLeaks, startStack } from './harness.js';

const RESULTS = fileURLToPath(new URL('../../test-results/', import.meta.url));

const skip = skipBrowser;
const title = skip
  ? skippedTitle
  : 'status page → Connect → sign-in form → success page → Connected, with JavaScript off';

/** Everything the page did that a person would call broken: console errors, failed or bad loads. */
function watch(page: Page, allowedOrigins: string[]) {
  const problems: string[] = [];
  const origins = new Set<string>();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.protocol === 'data:') return;
    origins.add(url.origin);
    if (!allowedOrigins.includes(url.origin)) problems.push(`external load: ${r.url()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return { problems, origins };
}

/** The status table's row for connection `id`. */
const rowOf = (page: Page, id: string) =>
  page.locator('tbody tr', { has: page.locator('td:first-child code', { hasText: new RegExp(`^${id}$`) }) });

describe('status page and consent in a real browser (headless Chromium)', () => {
  it.skipIf(skip)(title, { timeout: 30_000 }, async () => {
    const stack = await startStack({ connections: { mailbox: {}, uploader: {} } });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      // The page must work without script: the whole flow runs with JavaScript disabled.
      const context = await browser.newContext({
        javaScriptEnabled: false,
        viewport: { width: 1280, height: 720 },
      });
      const page = await context.newPage();
      const { problems, origins } = watch(page, [stack.url, new URL(stack.simUrl).origin]);
      const key = stack.local.functionKey;
      const statusUrl = `${stack.url}/api/status?code=${encodeURIComponent(key)}`;
      await mkdir(RESULTS, { recursive: true });

      // 1. The status page, as a browser asks for it (its own Accept header): HTML, both not connected.
      const first = await page.goto(statusUrl);
      expect(first?.status()).toBe(200);
      expect(first?.headers()['content-type']).toMatch(/^text\/html/);
      await expect(page.title()).resolves.toBe('Token broker status');
      await expect(page.locator('h1').textContent()).resolves.toBe('Token broker status');
      expect(await page.locator('script').count()).toBe(0);
      for (const id of ['mailbox', 'uploader']) {
        const badge = rowOf(page, id).locator('.badge');
        await expect(badge.textContent()).resolves.toBe('Not connected');
        await expect(badge.getAttribute('class')).resolves.toBe('badge not_connected');
        const link = rowOf(page, id).locator('a.button');
        await expect(link.textContent()).resolves.toBe('Connect');
        await expect(link.getAttribute('href')).resolves.toBe(
          `/api/start?connection=${id}&code=${encodeURIComponent(key)}`,
        );
      }
      await expect(page.locator('p.warn').textContent()).resolves.toBe('2 of 2 connections need attention.');

      // 2. Connect on the mailbox row: /api/start answers 302 to the simulator's sign-in form.
      await rowOf(page, 'mailbox').locator('a.button').click();
      await page.waitForURL((url) => url.origin === new URL(stack.simUrl).origin);
      expect(new URL(page.url()).pathname).toMatch(/\/oauth2\/v2\.0\/authorize$/);
      await expect(page.locator('h1').textContent()).resolves.toBe('Sign in');

      // 3. A person signs in: the form posts to the simulator, which redirects to /api/callback.
      const account = 'mailbox.owner@contoso.com';
      await page.locator('#account').fill(account);
      await Promise.all([
        page.waitForURL((url) => url.origin === stack.url && url.pathname === '/api/callback'),
        page.locator('#signin').click(),
      ]);
      await expect(page.locator('h1').textContent()).resolves.toBe('Connected');
      const success = (await page.locator('main').textContent()) ?? '';
      expect(success).toContain('mailbox');
      expect(success).toContain(`is now connected as ${account}`);
      expect(await page.locator('script').count()).toBe(0);
      for (const secret of stack.sim.issuedSecrets()) expect(await page.content()).not.toContain(secret);
      await page.screenshot({ path: `${RESULTS}consent-success.png`, fullPage: true });

      // 4. Back on the status page: mailbox connected as that account, uploader untouched.
      await page.goto(statusUrl);
      const mailbox = rowOf(page, 'mailbox');
      await expect(mailbox.locator('.badge').textContent()).resolves.toBe('Connected');
      await expect(mailbox.locator('.badge').getAttribute('class')).resolves.toBe('badge connected');
      await expect(mailbox.locator('td').nth(2).textContent()).resolves.toBe(account);
      await expect(mailbox.locator('td').nth(3).textContent()).resolves.toBe('today');
      await expect(mailbox.locator('a.button').textContent()).resolves.toBe('Reconnect');
      const uploader = rowOf(page, 'uploader');
      await expect(uploader.locator('.badge').textContent()).resolves.toBe('Not connected');
      await expect(uploader.locator('td').nth(2).textContent()).resolves.toBe('—');
      await expect(uploader.locator('a.button').textContent()).resolves.toBe('Connect');
      await expect(page.locator('p.warn').textContent()).resolves.toBe('1 of 2 connections needs attention.');
      expect(await page.locator('script').count()).toBe(0);
      await page.screenshot({ path: `${RESULTS}status-page.png`, fullPage: true });
      // A phone-width window: the table scrolls inside the card; the Connect links stay reachable.
      await page.setViewportSize({ width: 390, height: 800 });
      await page.screenshot({ path: `${RESULTS}status-page-narrow.png`, fullPage: true });
      expect(await rowOf(page, 'uploader').locator('a.button').isVisible()).toBe(true);

      // Nothing loaded from anywhere but the broker and the sign-in page; no errors, no failed loads.
      expect(problems).toEqual([]);
      expect([...origins].sort()).toEqual([stack.url, new URL(stack.simUrl).origin].sort());
      expect(await findLeaks(stack)).toEqual([]);
      await context.close();
    } finally {
      await browser?.close();
      await stack.close();
    }
  });

  it.skipIf(skip)(
    skip
      ? title
      : 'status page: the two connections that need a person first, each remedy in words with its action',
    { timeout: 30_000 },
    async () => {
      const stack = await startStack({
        connections: {
          mailbox: {},
          revoked: { expectedAccount: 'revoked@contoso.com' },
          mfa: { expectedAccount: 'mfa@contoso.com' },
        },
      });
      let browser: Browser | undefined;
      try {
        const key = stack.local.functionKey;
        for (const id of ['mailbox', 'revoked', 'mfa']) {
          expect((await consent(stack.url, key, id, { account: `${id}@contoso.com` })).status).toBe(200);
          stack.local.broker.tokens.invalidate(id);
        }
        // Two real upstream conditions: a password change revoked one grant, MFA is now required on another.
        stack.sim.revokeGrants('revoked@contoso.com');
        stack.sim.requireMfa('mfa@contoso.com');
        expect((await stack.api('/api/token?connection=revoked')).status).toBe(409);
        expect((await stack.api('/api/token?connection=mfa')).status).toBe(409);

        browser = await launchChromium();
        const context = await browser.newContext({
          javaScriptEnabled: false,
          viewport: { width: 1280, height: 900 },
        });
        const page = await context.newPage();
        const { problems } = watch(page, [stack.url, new URL(stack.simUrl).origin]);
        const statusUrl = `${stack.url}/api/status?code=${encodeURIComponent(key)}`;
        await page.goto(statusUrl);

        /** The header's count, then the section headings in page order. */
        const headings = async () => [
          await page.locator('p.warn').textContent(),
          ...(await page.locator('h2').allTextContents()),
        ];
        // The header counts them; the section that needs a person comes first.
        expect(await headings()).toEqual([
          '2 of 3 connections need attention.',
          'Needs a person (2)',
          'Healthy (1)',
          // The admin forms (invitations, managed connections) follow the connections.
          'Add connection',
        ]);
        const firstTable = page.locator('table').first();
        await expect(firstTable.locator('tbody td:first-child code').allTextContents()).resolves.toEqual([
          'revoked',
          'mfa',
        ]);
        await expect(
          page.locator('table').nth(1).locator('tbody td:first-child code').allTextContents(),
        ).resolves.toEqual(['mailbox']);

        // Each remedy reads as a sentence a person can act on, with the link and the account.
        const start = (id: string) => `${stack.url}/api/start?connection=${id}`;
        await expect(rowOf(page, 'revoked').locator('.remedy').textContent()).resolves.toBe(
          `What to do: Connection revoked: the grant was revoked, usually because the account's password was changed. Open ${start('revoked')} and sign in as revoked@contoso.com again.`,
        );
        await expect(rowOf(page, 'mfa').locator('.remedy').textContent()).resolves.toBe(
          `What to do: Connection mfa: multi-factor authentication is required. Open ${start('mfa')}, sign in as mfa@contoso.com and complete the multi-factor authentication it asks for (register a method first if there is none).`,
        );
        expect(await rowOf(page, 'mailbox').locator('.remedy').count()).toBe(0);
        for (const id of ['revoked', 'mfa', 'mailbox']) {
          const button = rowOf(page, id).locator('a.button');
          await expect(button.textContent()).resolves.toBe('Reconnect');
          await expect(button.getAttribute('href')).resolves.toBe(
            `/api/start?connection=${id}&code=${encodeURIComponent(key)}`,
          );
        }
        await page.screenshot({ path: `${RESULTS}status-page-remedies.png`, fullPage: true });

        // The one action works: Reconnect, sign in as the named account, and the row moves to Healthy.
        await rowOf(page, 'revoked').locator('a.button').click();
        await page.waitForURL((url) => url.origin === new URL(stack.simUrl).origin);
        await page.locator('#account').fill('revoked@contoso.com');
        await Promise.all([
          page.waitForURL((url) => url.origin === stack.url && url.pathname === '/api/callback'),
          page.locator('#signin').click(),
        ]);
        await expect(page.locator('h1').textContent()).resolves.toBe('Connected');
        await page.goto(statusUrl);
        expect(await headings()).toEqual([
          '1 of 3 connections needs attention.',
          'Needs a person (1)',
          'Healthy (2)',
          'Add connection',
        ]);
        await expect(rowOf(page, 'revoked').locator('.badge').textContent()).resolves.toBe('Connected');

        expect(problems).toEqual([]);
        expect(await findLeaks(stack)).toEqual([]);
        await context.close();
      } finally {
        await browser?.close();
        await stack.close();
      }
    },
  );
});
