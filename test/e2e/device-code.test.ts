import { existsSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/commands.js';
import type { StatusBody } from '../support/http-types.js';
import { FUNCTION_KEY, findLeaks, type Stack, startStack } from './harness.js';

/**
 * The device code flow (personal Outlook accounts): `/api/start` → the person signs in at the
 * simulator's device login → `/api/start/poll` or `broker connect`, over real HTTP, with the
 * simulator sharing the stack's manual clock (so "5 seconds later" is a clock move, not a wait).
 */
const PUBLIC_CLIENT = '0a1b2c3d-0000-4000-8000-00000000d0d0';
const OUTLOOK = {
  flow: 'device_code',
  tenant: 'consumers',
  clientId: PUBLIC_CLIENT,
  credential: undefined,
  scopes: ['User.Read', 'Mail.Read', 'Mail.ReadWrite', 'Mail.Send'],
};
const INTERVAL_MS = 5000;

interface StartBody {
  userCode: string;
  verificationUri: string;
  expiresIn: number;
  interval: number;
  pollUrl: string;
  message?: string;
}

interface PollBody {
  status: 'pending' | 'connected' | 'declined' | 'expired';
  account?: string;
  interval?: number;
  pollUrl?: string;
  detail?: string;
  providerError?: { error: string; aadsts?: number };
}

describe('device code flow', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      connections: {
        outlook: OUTLOOK,
        declined: OUTLOOK,
        expired: OUTLOOK,
        slow: OUTLOOK,
        page: OUTLOOK,
        guarded: { ...OUTLOOK, expectedAccount: 'Owner@Outlook.com' },
        cli: OUTLOOK,
        confidential: { flow: 'device_code' },
        webapp: {},
      },
    });
    stack.sim.registerClient({ clientId: PUBLIC_CLIENT, redirectUris: [] });
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack)).toEqual([]));

  async function start(id: string): Promise<StartBody> {
    const res = await stack.api(`/api/start?connection=${id}`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    for (const secret of stack.sim.issuedSecrets()) expect(text).not.toContain(secret);
    return JSON.parse(text) as StartBody;
  }

  async function poll(pollUrl: string, accept = 'application/json'): Promise<Response> {
    const url = new URL(pollUrl);
    expect(url.origin).toBe(stack.url);
    return stack.api(`${url.pathname}${url.search}`, { headers: { accept } });
  }

  async function pollJson(pollUrl: string): Promise<PollBody> {
    const res = await poll(pollUrl);
    expect(res.status).toBe(200);
    return (await res.json()) as PollBody;
  }

  it('goes from not_connected to vending tokens through the JSON API', async () => {
    const before = (await (await stack.api('/api/status')).json()) as StatusBody;
    expect(before.connections.find((c) => c.id === 'outlook')?.status).toBe('not_connected');

    const started = await start('outlook');
    expect(started.userCode).toMatch(/^[A-Z2-9]{9}$/);
    expect(started.verificationUri).toBe(`${stack.simUrl}/devicelogin`);
    expect(started.expiresIn).toBe(900);
    expect(started.interval).toBe(5);
    expect(started.message).toContain(started.userCode);
    expect(started.pollUrl).toMatch(new RegExp(`^${stack.url}/api/start/poll\\?connection=outlook&attempt=`));

    // Too early: answered without asking the provider.
    const polls = stack.sim.stats.devicePolls;
    expect(await pollJson(started.pollUrl)).toMatchObject({ status: 'pending', interval: 5 });
    expect(stack.sim.stats.devicePolls).toBe(polls);

    stack.clock.advance(INTERVAL_MS);
    const pending = await pollJson(started.pollUrl);
    expect(pending).toMatchObject({ status: 'pending', interval: 5 });
    expect(stack.sim.stats.devicePolls).toBe(polls + 1);

    stack.sim.approveDevice(started.userCode, 'ana@outlook.com');
    stack.clock.advance(INTERVAL_MS);
    expect(await pollJson(pending.pollUrl!)).toEqual({ status: 'connected', account: 'ana@outlook.com' });
    expect(stack.sim.stats.devicePolls).toBe(polls + 2);
    // Asked again, this instance remembers the outcome instead of presenting a redeemed code.
    expect(await pollJson(pending.pollUrl!)).toEqual({ status: 'connected', account: 'ana@outlook.com' });
    expect(stack.sim.stats.devicePolls).toBe(polls + 2);
    expect(stack.sim.stats.earlyPolls).toBe(0);

    const secret = await stack.local.broker.store.getSecret('rt-outlook');
    expect(stack.sim.issuedSecrets()).toContain(secret!.value);
    expect(secret!.tags).toMatchObject({
      account: 'ana@outlook.com',
      tenant: '9188040d-6c67-4c5b-b112-36a304b66dad',
      status: 'connected',
    });

    const token = await stack.api('/api/token?connection=outlook');
    expect(token.status).toBe(200);
    expect(await token.json()).toMatchObject({
      token_type: 'Bearer',
      scope: expect.stringContaining('Mail.Send'),
    });

    // An hour later the public client refreshes without any secret (the simulator refuses one).
    const refreshes = stack.sim.stats.byGrant.refresh_token ?? 0;
    stack.clock.advance(2 * 3600_000);
    const refreshed = await stack.api('/api/token?connection=outlook&format=xoauth2');
    expect(refreshed.status).toBe(200);
    expect(await refreshed.json()).toMatchObject({ xoauth2: expect.any(String) });
    expect(stack.sim.stats.byGrant.refresh_token).toBe(refreshes + 1);

    const after = (await (await stack.api('/api/status')).json()) as StatusBody;
    expect(after.connections.find((c) => c.id === 'outlook')).toMatchObject({
      status: 'connected',
      account: 'ana@outlook.com',
    });
  });

  it('ends with "declined" when the person declines at the device login page, storing nothing', async () => {
    const started = await start('declined');
    const page = await fetch(started.verificationUri, {
      method: 'POST',
      body: new URLSearchParams({ otc: started.userCode, decline: 'Decline' }),
    });
    expect(page.status).toBe(200);
    stack.clock.advance(INTERVAL_MS);
    const polls = stack.sim.stats.devicePolls;
    const declined = await pollJson(started.pollUrl);
    expect(declined).toMatchObject({
      status: 'declined',
      providerError: { error: 'authorization_declined' },
    });
    expect(declined.detail).toMatch(/declined.*Start again at \/api\/start\?connection=declined/);
    expect(stack.sim.stats.devicePolls).toBe(polls + 1);
    stack.clock.advance(INTERVAL_MS);
    expect((await pollJson(started.pollUrl)).status).toBe('declined');
    expect(stack.sim.stats.devicePolls).toBe(polls + 1);
    expect(await stack.local.broker.store.getSecret('rt-declined')).toBeUndefined();
  });

  it('ends with "expired" once the code has expired, without asking the provider', async () => {
    const started = await start('expired');
    const polls = stack.sim.stats.devicePolls;
    stack.clock.advance(started.expiresIn * 1000);
    const expired = await pollJson(started.pollUrl);
    expect(expired.status).toBe('expired');
    expect(expired.detail).toMatch(/expired/);
    expect(stack.sim.stats.devicePolls).toBe(polls);
    expect(() => stack.sim.approveDevice(started.userCode)).toThrow();
  });

  it('ends with "expired" when the provider says expired_token, and with consent_failed on bad_verification_code', async () => {
    const started = await start('expired');
    stack.clock.advance(INTERVAL_MS);
    stack.sim.failNext('token', {
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        error: 'expired_token',
        error_description: 'AADSTS70019: expired',
        error_codes: [70019],
      }),
    });
    expect(await pollJson(started.pollUrl)).toMatchObject({
      status: 'expired',
      providerError: { error: 'expired_token', aadsts: 70019 },
    });

    const other = await start('expired');
    stack.clock.advance(INTERVAL_MS);
    stack.sim.failNext('token', {
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: 'bad_verification_code', error_codes: [70018] }),
    });
    const bad = await poll(other.pollUrl);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/problem+json');
    expect(await bad.json()).toMatchObject({
      code: 'consent_failed',
      providerError: { error: 'bad_verification_code', aadsts: 70018 },
    });
  });

  it('respects the interval and slow_down, even for clients that poll rapidly or reuse old poll URLs', async () => {
    const started = await start('slow');
    const polls = stack.sim.stats.devicePolls;
    for (let i = 0; i < 10; i++) expect((await pollJson(started.pollUrl)).status).toBe('pending');
    expect(stack.sim.stats.devicePolls).toBe(polls);

    stack.clock.advance(INTERVAL_MS);
    const first = await pollJson(started.pollUrl);
    expect(stack.sim.stats.devicePolls).toBe(polls + 1);
    for (let i = 0; i < 5; i++) {
      expect((await pollJson(started.pollUrl)).status).toBe('pending');
      expect((await pollJson(first.pollUrl!)).status).toBe('pending');
    }
    expect(stack.sim.stats.devicePolls).toBe(polls + 1);

    // The provider asks to slow down: from now on 10 s between polls.
    stack.clock.advance(INTERVAL_MS);
    stack.sim.failNext('token', {
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: 'slow_down', error_codes: [70016] }),
    });
    const slowed = await pollJson(first.pollUrl!);
    expect(slowed).toMatchObject({ status: 'pending', interval: 10 });
    const afterSlowDown = stack.sim.stats.devicePolls;
    stack.clock.advance(INTERVAL_MS);
    // 5 s later: too early for the new interval, whichever poll URL is used.
    expect(await pollJson(slowed.pollUrl!)).toMatchObject({ status: 'pending', interval: 10 });
    expect(await pollJson(started.pollUrl)).toMatchObject({ status: 'pending', interval: 10 });
    expect(stack.sim.stats.devicePolls).toBe(afterSlowDown);
    stack.clock.advance(INTERVAL_MS);
    expect(await pollJson(started.pollUrl)).toMatchObject({ status: 'pending', interval: 10 });
    expect(stack.sim.stats.devicePolls).toBe(afterSlowDown + 1);
    expect(stack.sim.stats.earlyPolls).toBe(0);
  });

  it('answers 503 with Retry-After when the provider is down, keeping the attempt alive', async () => {
    const started = await start('slow');
    stack.clock.advance(INTERVAL_MS);
    stack.sim.failNext('token', { status: 503, headers: { 'Retry-After': '8' }, body: '' });
    const down = await poll(started.pollUrl);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('8');
    expect(await down.json()).toMatchObject({ code: 'upstream_unavailable' });
    const polls = stack.sim.stats.devicePolls;
    stack.clock.advance(INTERVAL_MS); // the interval has passed, Retry-After has not
    expect((await pollJson(started.pollUrl)).status).toBe('pending');
    expect(stack.sim.stats.devicePolls).toBe(polls);
    stack.clock.advance(3000);
    stack.sim.approveDevice(started.userCode, 'slow.user@outlook.com');
    expect(await pollJson(started.pollUrl)).toEqual({
      status: 'connected',
      account: 'slow.user@outlook.com',
    });
    expect(stack.sim.stats.devicePolls).toBe(polls + 1);
  });

  it('shows a page with the user code, a nonce script that polls, and a no-JavaScript fallback', async () => {
    // An earlier test connected "page" as someone else: this person takes it over (account pinning).
    const res = await stack.api(`/api/start?connection=page&replace=true&code=${FUNCTION_KEY}`, {
      key: null,
      headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    for (const secret of stack.sim.issuedSecrets()) expect(html).not.toContain(secret);

    const userCode = /<span class="user-code" id="user-code">([A-Z2-9]{9})<\/span>/.exec(html)?.[1];
    expect(userCode).toBeDefined();
    expect(html).toContain(`href="${stack.simUrl}/devicelogin"`);
    expect(html).toMatch(/<time id="expires" datetime="[^"]+">\d\d:\d\d UTC<\/time>/);

    const csp = res.headers.get('content-security-policy')!;
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html.match(/<script/g)).toHaveLength(1);

    // Opened with ?code=, the page polls with the same key; its fallback link is the poll URL.
    const link = /<a class="button" href="([^"]+)">I have signed in<\/a>/.exec(html)?.[1];
    expect(link).toBeDefined();
    const fallback = link!.replace(/&#38;/g, '&');
    expect(fallback).toMatch(/^\/api\/start\/poll\?connection=page&attempt=[A-Za-z0-9_-]+&code=/);
    expect(html).toContain(`data-poll="${link}"`);

    const waiting = await stack.api(fallback, { key: null, headers: { accept: 'text/html' } });
    expect(waiting.status).toBe(200);
    const waitingHtml = await waiting.text();
    expect(waitingHtml).toContain(userCode!);
    expect(waitingHtml).not.toContain('<script');
    expect(waiting.headers.get('refresh')).toMatch(
      /^5; url=\/api\/start\/poll\?connection=page&attempt=.+&code=/,
    );

    stack.sim.approveDevice(userCode!, 'page.user@hotmail.com');
    stack.clock.advance(INTERVAL_MS);
    const done = await stack.api(fallback, { key: null, headers: { accept: 'text/html' } });
    expect(done.status).toBe(200);
    const doneHtml = await done.text();
    expect(doneHtml).toContain('Connected');
    expect(doneHtml).toContain('page.user@hotmail.com');
    for (const secret of stack.sim.issuedSecrets()) {
      expect(waitingHtml).not.toContain(secret);
      expect(doneHtml).not.toContain(secret);
    }

    // Opened with the key in a header, the key appears nowhere on the page.
    const headerKey = await stack.api('/api/start?connection=page', { headers: { accept: 'text/html' } });
    expect(await headerKey.text()).not.toContain(FUNCTION_KEY);
  });

  it("runs the page's script: it polls at the interval and shows the connected account", async () => {
    // An earlier test connected "page" as someone else: this person takes it over (account pinning).
    const res = await stack.api(`/api/start?connection=page&replace=true&code=${FUNCTION_KEY}`, {
      key: null,
      headers: { accept: 'text/html' },
    });
    const html = await res.text();
    const script = /<script nonce="[^"]+">([\s\S]*?)<\/script>/.exec(html)?.[1];
    const poll = /data-poll="([^"]+)"/.exec(html)?.[1]?.replace(/&#38;/g, '&');
    const userCode = /id="user-code">([A-Z2-9]{9})</.exec(html)?.[1];
    expect(script && poll && userCode).toBeTruthy();

    // Just enough DOM for the script; timers are run by hand, each after moving the clock.
    const element = (fields: Record<string, unknown>) => ({
      textContent: '',
      className: '',
      hidden: false,
      ...fields,
    });
    const elements: Record<string, ReturnType<typeof element>> = {
      device: element({ dataset: { poll, interval: '5' } }),
      status: element({}),
      copy: element({ hidden: true, addEventListener: () => {} }),
      'user-code': element({ textContent: userCode }),
      expires: element({ dateTime: new Date().toISOString() }),
    };
    const timers: Array<{ run: () => unknown; ms: number }> = [];
    const fetched: string[] = [];
    runInNewContext(script!, {
      document: { getElementById: (id: string) => elements[id], querySelectorAll: () => [] },
      navigator: {},
      location: { href: `${stack.url}/api/start?connection=page` },
      URL,
      fetch: (url: string, init: { headers: Record<string, string> }) => {
        fetched.push(url);
        return stack.api(url, { key: null, headers: init.headers });
      },
      setTimeout: (run: () => unknown, ms: number) => timers.push({ run, ms }),
    });
    const tick = async () => {
      const timer = timers.shift()!;
      stack.clock.advance(timer.ms);
      await timer.run();
    };
    await tick();
    expect(elements.status!.textContent).toBe('');
    expect(timers).toHaveLength(1);
    stack.sim.approveDevice(userCode!, 'script.user@live.com');
    await tick();
    expect(elements.status!.textContent).toBe(
      'Connected as script.user@live.com. You can close this window.',
    );
    expect(timers).toHaveLength(0);
    expect(fetched).toHaveLength(2);
    expect(fetched[1]).toMatch(/^\/api\/start\/poll\?connection=page&attempt=.+&code=/);
    expect(fetched[1]).not.toBe(fetched[0]);
    expect(stack.sim.stats.earlyPolls).toBe(0);
  });

  it('refuses a forged attempt, or one for another connection', async () => {
    const started = await start('outlook');
    const forged = await poll(started.pollUrl.replace(/attempt=([A-Za-z0-9_-]{10})/, 'attempt=AAAAAAAAAA'));
    expect(forged.status).toBe(400);
    expect(await forged.json()).toMatchObject({ code: 'consent_failed' });
    const moved = await poll(started.pollUrl.replace('connection=outlook', 'connection=slow'));
    expect(moved.status).toBe(400);
    const missing = await stack.api('/api/start/poll?connection=outlook', {
      headers: { accept: 'application/json' },
    });
    expect(await missing.json()).toMatchObject({ code: 'invalid_request', status: 400 });
    const unauthorized = await stack.api(new URL(started.pollUrl).pathname, { key: 'wrong-key-wrong-key' });
    expect(unauthorized.status).toBe(401);
  });

  it('refuses an account other than expectedAccount with 403 and stores nothing', async () => {
    const started = await start('guarded');
    stack.sim.approveDevice(started.userCode, 'mallory@outlook.com');
    stack.clock.advance(INTERVAL_MS);
    const res = await poll(started.pollUrl);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'account_mismatch', status: 403 });
    expect(await stack.local.broker.store.getSecret('rt-guarded')).toBeUndefined();
    stack.clock.advance(INTERVAL_MS);
    expect((await poll(started.pollUrl)).status).toBe(403);

    const html = await poll(started.pollUrl, 'text/html');
    expect(html.status).toBe(403);
    expect(await html.text()).toContain('account_mismatch');

    const again = await start('guarded');
    stack.sim.approveDevice(again.userCode, 'owner@outlook.com');
    stack.clock.advance(INTERVAL_MS);
    expect(await pollJson(again.pollUrl)).toEqual({ status: 'connected', account: 'owner@outlook.com' });
  });

  it('works for a confidential client too, which sends its secret when polling', async () => {
    const started = await start('confidential');
    stack.sim.approveDevice(started.userCode, 'bo@contoso.com');
    stack.clock.advance(INTERVAL_MS);
    expect(await pollJson(started.pollUrl)).toEqual({ status: 'connected', account: 'bo@contoso.com' });
  });

  it('keeps /api/start a redirect for authorization-code connections', async () => {
    const res = await stack.api('/api/start?connection=webapp', { headers: { accept: 'application/json' } });
    expect(res.status).toBe(302);
  });

  describe('broker connect', () => {
    const cli = (lines: string[], onSleep: (n: number) => void) =>
      runCli(['connect', 'cli'], (line) => lines.push(line), {
        openBroker: async () => stack.local.broker,
        sleep: async (ms) => {
          onSleep(lines.length);
          stack.clock.advance(ms);
        },
      });

    it('prints the code, polls at the interval until the person signs in, and stores the grant', async () => {
      const lines: string[] = [];
      const polls = stack.sim.stats.devicePolls;
      let sleeps = 0;
      const code = await cli(lines, () => {
        sleeps++;
        // The person signs in while the terminal waits for its third poll.
        if (sleeps === 3) {
          const userCode = /enter the code ([A-Z2-9]{9})/.exec(lines[0] ?? '')?.[1];
          stack.sim.approveDevice(userCode!, 'cli.user@hotmail.com');
        }
      });
      expect(code).toBe(0);
      expect(lines[0]).toMatch(
        new RegExp(
          `^To sign in, use a web browser to open the page ${stack.simUrl}/devicelogin and enter the code [A-Z2-9]{9} to authenticate\\.$`,
        ),
      );
      expect(lines.at(-1)).toBe('Connected: connection cli is connected as cli.user@hotmail.com.');
      expect(stack.sim.stats.devicePolls).toBe(polls + 3);
      expect(stack.sim.stats.earlyPolls).toBe(0);
      for (const secret of stack.sim.issuedSecrets()) expect(lines.join('\n')).not.toContain(secret);
      expect((await stack.local.broker.store.getSecret('rt-cli'))!.tags.account).toBe('cli.user@hotmail.com');
      expect((await stack.api('/api/token?connection=cli')).status).toBe(200);
    });

    it('exits 1 with the reason when the person declines', async () => {
      const lines: string[] = [];
      let declined = false;
      const code = await cli(lines, () => {
        const userCode = /enter the code ([A-Z2-9]{9})/.exec(lines[0] ?? '')?.[1];
        if (userCode && !declined) stack.sim.declineDevice(userCode);
        declined = true;
      });
      expect(code).toBe(1);
      expect(lines.at(-1)).toMatch(/declined/);
    });

    it('refuses an authorization-code connection, pointing at /api/start', async () => {
      const err = await runCli(['connect', 'webapp'], () => {}, {
        openBroker: async () => stack.local.broker,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'invalid_request',
        message: expect.stringContaining('/api/start?connection=webapp'),
      });
    });
  });
});

/** Debian's Chromium, as in browser.test.ts; skipped (and named so) only where it is missing outside CI. */
const CHROMIUM = '/usr/bin/chromium';
const noBrowser = !existsSync(CHROMIUM) && !process.env.CI;

describe('device code page in a real browser (headless Chromium, JavaScript on)', () => {
  const title = noBrowser
    ? `SKIPPED: ${CHROMIUM} is missing (with CI set this test fails instead)`
    : 'the page polls under its CSP and turns into "Connected as …" after the sign-in';
  it.skipIf(noBrowser)(title, { timeout: 30_000 }, async () => {
    const stack = await startStack({ connections: { outlook: OUTLOOK } });
    stack.sim.registerClient({ clientId: PUBLIC_CLIENT, redirectUris: [] });
    stack.sim.setDeviceTiming({ intervalSec: 1 });
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-quic'],
      });
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('request', (r) => {
        if (new URL(r.url()).origin !== stack.url) problems.push(`other origin: ${r.url()}`);
      });
      const polls: string[] = [];
      page.on('response', (r) => {
        if (r.url().includes('/api/start/poll')) polls.push(String(r.status()));
      });

      const res = await page.goto(`${stack.url}/api/start?connection=outlook&code=${FUNCTION_KEY}`);
      expect(res?.status()).toBe(200);
      const userCode = (await page.locator('#user-code').textContent())?.trim();
      expect(userCode).toMatch(/^[A-Z2-9]{9}$/);
      await expect(page.locator('#copy').isVisible()).resolves.toBe(true);
      await expect(page.locator('#status').textContent()).resolves.toBe('Waiting for you to sign in…');

      stack.sim.approveDevice(userCode!, 'browser.user@outlook.com');
      stack.clock.advance(1000);
      await page.locator('#status', { hasText: /^Connected/ }).waitFor({ timeout: 10_000 });
      await expect(page.locator('#status').textContent()).resolves.toBe(
        'Connected as browser.user@outlook.com. You can close this window.',
      );
      await expect(page.locator('.while-waiting').isVisible()).resolves.toBe(false);
      expect(polls.length).toBeGreaterThan(0);
      expect(polls.every((s) => s === '200')).toBe(true);
      expect(problems).toEqual([]);
      expect(stack.sim.stats.earlyPolls).toBe(0);
      for (const secret of stack.sim.issuedSecrets()) expect(await page.content()).not.toContain(secret);
      expect(await findLeaks(stack)).toEqual([]);
    } finally {
      await browser?.close();
      await stack.close();
    }
  });
});
