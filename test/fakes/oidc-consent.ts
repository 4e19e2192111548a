/**
 * A person's browser, minus the browser, for `oidc-provider`'s own login and consent pages: follows
 * `/api/start` to the provider, signs in on its login form, presses "Continue" on its consent page,
 * and returns to the broker's callback with the broker's consent cookie. Real HTTP throughout, with a
 * cookie jar for the provider's session cookies. Also approves a device code on its `/device` page.
 */
import { parseForm } from './consent-client.js';

/** Cookies by name, for one host; paths are ignored (the provider scopes some to one interaction). */
class CookieJar {
  private readonly cookies = new Map<string, string>();

  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [k, v] = a.split('=');
        return k?.trim().toLowerCase() === 'expires' && Date.parse(v ?? '') <= Date.now();
      });
      if (!value || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export interface OidcConsentOptions {
  /** What the person types as login (the provider's development login takes any). */
  login?: string;
  /** Abort on the consent page instead of "Continue". */
  deny?: boolean;
}

interface WalkOptions extends OidcConsentOptions {
  /** What the person types on the device page. */
  userCode?: string;
}

export interface OidcConsentOutcome {
  status: number;
  body: string;
  /** Pages the person saw on the provider, in order (`login`, `consent`). */
  pages: string[];
}

/**
 * Walks the provider's pages from `url` until it redirects to `stopAt` (or renders a page that is
 * neither a login nor a consent form); returns that redirect's target.
 */
async function walk(
  url: string,
  stopAt: (location: string) => boolean,
  jar: CookieJar,
  options: WalkOptions,
  pages: string[],
): Promise<{ location?: string; html?: string; status: number }> {
  let next: { url: string; init?: RequestInit } = { url };
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(next.url, {
      ...next.init,
      headers: { ...(next.init?.headers as Record<string, string>), cookie: jar.header() },
      redirect: 'manual',
    });
    jar.take(res);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const target = new URL(location, next.url).toString();
      if (stopAt(target)) return { location: target, status: res.status };
      next = { url: target };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) return { html, status: res.status };
    const { action, fields } = parseForm(html, next.url);
    const prompt = fields.get('prompt');
    if (prompt === 'login') {
      pages.push('login');
      fields.set('login', options.login ?? 'alice@example.com');
      fields.set('password', 'any password');
    } else if (prompt === 'consent') {
      pages.push('consent');
      if (options.deny) {
        const abort = /href="([^"]*\/abort)"/.exec(html)?.[1];
        if (!abort) throw new Error('the consent page has no abort link');
        next = { url: new URL(abort.replace(/&amp;/g, '&'), next.url).toString() };
        continue;
      }
    } else if (fields.has('xsrf') && /name="user_code"/.test(html)) {
      // The code input page, then its confirmation page (which carries the code itself).
      pages.push(fields.has('confirm') ? 'device-confirm' : 'device');
      if (!fields.has('user_code')) fields.set('user_code', options.userCode ?? '');
    } else {
      return { html, status: res.status };
    }
    next = {
      url: action,
      init: {
        method: 'POST',
        body: fields.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
    };
  }
  throw new Error('too many redirects at the provider');
}

/** Starts consent for `connection` at the broker and completes it on the provider's pages. */
export async function oidcConsent(
  brokerUrl: string,
  functionKey: string,
  connection: string,
  options: OidcConsentOptions = {},
): Promise<OidcConsentOutcome> {
  const start = await fetch(`${brokerUrl}/api/start?connection=${connection}`, {
    headers: { 'x-functions-key': functionKey },
    redirect: 'manual',
  });
  if (start.status !== 302) throw new Error(`start answered ${start.status}: ${await start.text()}`);
  const brokerCookies = start.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  const pages: string[] = [];
  const callbackPrefix = `${brokerUrl}/api/callback`;
  const reached = await walk(
    start.headers.get('location')!,
    (location) => location.startsWith(callbackPrefix),
    new CookieJar(),
    options,
    pages,
  );
  if (!reached.location) throw new Error(`the provider stopped at HTTP ${reached.status}: ${reached.html}`);
  const callback = await fetch(reached.location, {
    headers: { cookie: brokerCookies, accept: 'text/html' },
    redirect: 'manual',
  });
  return { status: callback.status, body: await callback.text(), pages };
}

/**
 * A person on another device: opens the verification URI, types `userCode`, signs in and consents.
 * Returns the provider's final page.
 */
export async function approveDeviceCode(
  verificationUri: string,
  userCode: string,
  options: OidcConsentOptions = {},
): Promise<{ html: string; pages: string[] }> {
  const pages: string[] = [];
  const end = await walk(verificationUri, () => false, new CookieJar(), { ...options, userCode }, pages);
  return { html: end.html ?? '', pages };
}
