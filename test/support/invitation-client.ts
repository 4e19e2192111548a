/**
 * A mailbox owner's browser, minus the browser, for invitation links: opens the link (arriving from
 * another site, as from a mail), presses "Continue to sign in" (a same-origin POST with the
 * anti-forgery cookie and field), signs in at the simulator and returns to the callback. Real HTTP.
 */
import { parseForm } from '../fakes/consent-client.js';

export interface OwnerOutcome {
  status: number;
  body: string;
  headers: Headers;
}

function cookiesOf(res: Response): string {
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
}

/** GET the link as a browser arriving from a mail: the confirm page and its anti-forgery cookie. */
export async function openLink(url: string): Promise<{ res: Response; html: string; cookie: string }> {
  const res = await fetch(url, {
    headers: { accept: 'text/html', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
    redirect: 'manual',
  });
  const html = await res.text();
  return { res, html, cookie: cookiesOf(res) };
}

/** POST a form as the broker's own page would (same-origin), with the given cookie and fields. */
export function postForm(
  action: string,
  fields: URLSearchParams,
  cookie: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(action, {
    method: 'POST',
    body: fields,
    headers: {
      accept: 'text/html',
      'content-type': 'application/x-www-form-urlencoded',
      'sec-fetch-site': 'same-origin',
      ...(cookie ? { cookie } : {}),
      ...headers,
    },
    redirect: 'manual',
  });
}

/** Signs in at the simulator from a 302 to it and follows back to the callback with `cookie`. */
export async function signInAndReturn(
  start: Response,
  account: string,
  accept = 'text/html',
): Promise<OwnerOutcome> {
  if (start.status !== 302) throw new Error(`expected 302, got ${start.status}: ${await start.text()}`);
  const consentCookie = cookiesOf(start);
  const authorizeUrl = start.headers.get('location')!;
  const page = await fetch(authorizeUrl);
  const { action, fields } = parseForm(await page.text(), authorizeUrl);
  fields.set('account', account);
  fields.set('signin', 'Sign in');
  const signIn = await fetch(action, { method: 'POST', body: fields, redirect: 'manual' });
  if (signIn.status !== 302) throw new Error(`sign-in answered ${signIn.status}`);
  const res = await fetch(signIn.headers.get('location')!, {
    headers: { accept, cookie: consentCookie },
    redirect: 'manual',
  });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/** The whole walk: open the link, continue, sign in as `account`; the callback's answer. */
export async function acceptInvitation(url: string, account: string): Promise<OwnerOutcome> {
  const { res, html, cookie } = await openLink(url);
  if (res.status !== 200) throw new Error(`link answered ${res.status}`);
  const { action, fields } = parseForm(html, url);
  const post = await postForm(action, fields, cookie);
  return signInAndReturn(post, account);
}
