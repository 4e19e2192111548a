import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { launchChromium, skipBrowser, skippedTitle } from '../support/browser.js';
import { findLeaks, simulatorTemplate, startStack } from './harness.js';

const RESULTS = fileURLToPath(new URL('../../test-results/', import.meta.url));
const title = skipBrowser
  ? skippedTitle
  : 'status page: Add connection from a template → Invite → a second browser with no key opens the link → Continue → sign in → Connected → Delete';

/** The status table's row for connection `id`. */
const rowOf = (page: Page, id: string) =>
  page.locator('tbody tr', { has: page.locator('td:first-child code', { hasText: new RegExp(`^${id}$`) }) });

/** Console errors and failed loads: what a person would call broken. */
function watch(page: Page) {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  return problems;
}

describe('invitations in a real browser (headless Chromium)', () => {
  it.skipIf(skipBrowser)(title, { timeout: 45_000 }, async () => {
    const owner = 'desk7@contoso.com';
    const stack = await startStack({ connections: { uploader: {} } });
    // The template the admin picks (managed, through the admin API).
    const put = await stack.api('/api/templates/support-mail', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        simulatorTemplate(stack, [
          'https://graph.microsoft.com/User.Read',
          'https://outlook.office.com/IMAP.AccessAsUser.All',
        ]),
      ),
    });
    expect(put.status).toBe(201);
    let browser: Browser | undefined;
    const tokens: string[] = [];
    try {
      browser = await launchChromium();
      await mkdir(RESULTS, { recursive: true });
      const key = stack.local.functionKey;
      const statusUrl = `${stack.url}/api/status?code=${encodeURIComponent(key)}`;

      // 1. The admin, on the status page, invites the mailbox's owner — from the keyboard.
      const adminContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await adminContext.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url });
      const admin = await adminContext.newPage();
      const adminProblems = watch(admin);
      await admin.goto(statusUrl);
      // 0. Add connection: id, template, expected account, display name — a managed connection.
      await admin.getByLabel('Connection id').fill('mailbox');
      await admin.getByLabel('Template').selectOption('support-mail');
      await admin.getByLabel('Expected account').fill(owner);
      await admin.getByLabel('Display name').fill('Front desk 7');
      await admin.getByRole('button', { name: 'Add connection' }).click();
      await expect(admin.locator('.notice').textContent()).resolves.toContain('mailbox is added');
      await expect(rowOf(admin, 'mailbox').locator('.badge').textContent()).resolves.toBe('Not connected');
      expect(
        await rowOf(admin, 'uploader')
          .getByRole('button', { name: /Delete/ })
          .count(),
      ).toBe(0);
      const invite = rowOf(admin, 'mailbox').getByRole('button', { name: 'Invite the owner of mailbox' });
      await invite.focus();
      await Promise.all([admin.waitForLoadState('load'), admin.keyboard.press('Enter')]);
      await admin.locator('#invitation-url').waitFor();
      const link = await admin.locator('#invitation-url').inputValue();
      tokens.push(link.split('/').pop()!);
      expect(link).toMatch(new RegExp(`^${stack.url}/api/connect/[A-Za-z0-9_-]{43}$`));
      await admin.locator('#copy-invitation').click();
      await expect(admin.locator('#copy-invitation').textContent()).resolves.toBe('Copied');
      expect(await admin.evaluate('navigator.clipboard.readText()')).toBe(link);
      await expect(admin.locator('table.invitations tbody tr').count()).resolves.toBe(1);
      await admin.screenshot({ path: `${RESULTS}invite-link.png`, fullPage: true });
      // A phone: the buttons stay on screen and big enough to tap.
      await admin.setViewportSize({ width: 390, height: 800 });
      await admin.screenshot({ path: `${RESULTS}invite-link-narrow.png`, fullPage: true });
      const box = await rowOf(admin, 'uploader')
        .getByRole('button', { name: /Invite/ })
        .boundingBox();
      expect(box!.height).toBeGreaterThanOrEqual(44);
      expect(box!.x + box!.width).toBeLessThanOrEqual(390);

      // 2. The owner, in another browser with no key and no session, opens the link.
      const ownerContext = await browser.newContext({ viewport: { width: 390, height: 800 } });
      const ownerPage = await ownerContext.newPage();
      const ownerProblems = watch(ownerPage);
      const opened = await ownerPage.goto(link);
      expect(opened?.status()).toBe(200);
      const text = (await ownerPage.locator('main').textContent()) ?? '';
      expect(text).toContain('Front desk 7');
      expect(text).toContain(owner);
      expect(text).toContain('read and manage your mail over IMAP');
      await ownerPage.screenshot({ path: `${RESULTS}invite-owner.png`, fullPage: true });
      await Promise.all([
        ownerPage.waitForURL((url) => url.origin === new URL(stack.simUrl).origin),
        ownerPage.getByRole('button', { name: 'Continue to sign in' }).click(),
      ]);
      await ownerPage.locator('#account').fill(owner);
      await Promise.all([
        ownerPage.waitForURL((url) => url.origin === stack.url && url.pathname === '/api/callback'),
        ownerPage.locator('#signin').click(),
      ]);
      await expect(ownerPage.locator('h1').textContent()).resolves.toBe('Connected');
      expect(await ownerPage.locator('main').textContent()).toContain(`is now connected as ${owner}`);

      // 3. The link is used up: opened again, the one 410 page.
      const again = await ownerPage.goto(link);
      expect(again?.status()).toBe(410);

      // 4. The admin's status page: Connected, nothing pending; then invite and revoke the uploader.
      await admin.setViewportSize({ width: 1280, height: 800 });
      await admin.goto(statusUrl);
      await expect(rowOf(admin, 'mailbox').locator('.badge').textContent()).resolves.toBe('Connected');
      await expect(rowOf(admin, 'mailbox').locator('td').nth(2).textContent()).resolves.toBe(owner);
      await expect(admin.locator('table.invitations').count()).resolves.toBe(0);
      await rowOf(admin, 'uploader')
        .getByRole('button', { name: /Invite/ })
        .click();
      const second = await admin.locator('#invitation-url').inputValue();
      tokens.push(second.split('/').pop()!);
      await admin.getByRole('button', { name: 'Revoke the invitation for uploader' }).click();
      await expect(admin.locator('.notice').textContent()).resolves.toContain('revoked');
      await expect(admin.locator('table.invitations').count()).resolves.toBe(0);
      expect((await ownerPage.goto(second))?.status()).toBe(410);

      // 5. Delete the managed connection, after a confirmation; the declared one has no Delete.
      await rowOf(admin, 'mailbox').getByRole('button', { name: 'Delete connection mailbox' }).click();
      await expect(admin.locator('#confirm-delete').textContent()).resolves.toContain(
        'Delete connection mailbox?',
      );
      await expect(rowOf(admin, 'mailbox').count()).resolves.toBe(1);
      await admin.getByRole('button', { name: 'Delete mailbox' }).click();
      await expect(admin.locator('.notice').textContent()).resolves.toContain('mailbox is deleted');
      await expect(rowOf(admin, 'mailbox').count()).resolves.toBe(0);
      expect(await stack.local.broker.store.getSecret('rt-mailbox')).toBeUndefined();

      expect(adminProblems).toEqual([]);
      // The two 410s are the only errors the owner's browser saw.
      expect(ownerProblems.filter((p) => !p.includes('410'))).toEqual([]);
      expect(await findLeaks(stack, tokens)).toEqual([]);
      await adminContext.close();
      await ownerContext.close();
    } finally {
      await browser?.close();
      await stack.close();
    }
  });
});
