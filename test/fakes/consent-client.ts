/**
 * A person's browser, minus the browser: follows `/api/start` to the simulator's sign-in form, submits
 * it, and returns to the broker's callback with the cookies `/api/start` set. Real HTTP throughout.
 */
export interface ConsentOptions {
  account?: string;
  /** Begin with `replace=true`: another account may take a connected connection over. */
  replace?: boolean;
  /** Press "Cancel" instead of "Sign in". */
  cancel?: boolean;
  /** Called between sign-in and callback (e.g. to move a clock). */
  beforeCallback?: () => void | Promise<void>;
  /** Replace the state the provider returns (forgery tests). */
  tamperState?: (state: string) => string;
  /** Drop the consent cookie (a callback opened in another browser). */
  dropCookie?: boolean;
  accept?: string;
  /** More headers for `/api/start` (e.g. the platform's `X-MS-CLIENT-PRINCIPAL` under easyauth). */
  startHeaders?: Record<string, string>;
}

export interface ConsentOutcome {
  status: number;
  body: string;
  contentType: string;
  headers: Headers;
}

function cookieHeader(res: Response): string {
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
}

/** Hidden inputs and the action of the first form on a page. */
export function parseForm(html: string, base: string): { action: string; fields: URLSearchParams } {
  const form = /<form[^>]*action="([^"]*)"/i.exec(html);
  const fields = new URLSearchParams();
  for (const input of html.matchAll(/<input\b[^>]*>/gi)) {
    const tag = input[0];
    if (!/type="hidden"/i.test(tag)) continue;
    const name = /name="([^"]*)"/i.exec(tag)?.[1];
    const value = /value="([^"]*)"/i.exec(tag)?.[1] ?? '';
    if (name) fields.set(decodeEntities(name), decodeEntities(value));
  }
  return { action: new URL(decodeEntities(form?.[1] ?? ''), base).toString(), fields };
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCharCode(Number.parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Starts consent for `connection` and signs in as `account`; returns the callback's answer. */
export async function consent(
  brokerUrl: string,
  functionKey: string,
  connection: string,
  options: ConsentOptions = {},
): Promise<ConsentOutcome> {
  const replace = options.replace ? '&replace=true' : '';
  const start = await fetch(`${brokerUrl}/api/start?connection=${connection}${replace}`, {
    headers: { 'x-functions-key': functionKey, ...options.startHeaders },
    redirect: 'manual',
  });
  if (start.status !== 302) throw new Error(`start answered ${start.status}: ${await start.text()}`);
  const cookies = cookieHeader(start);
  const authorizeUrl = start.headers.get('location')!;
  const page = await fetch(authorizeUrl);
  const html = await page.text();
  if (page.status !== 200) throw new Error(`authorize answered ${page.status}`);
  const { action, fields } = parseForm(html, authorizeUrl);
  fields.set('account', options.account ?? 'user@contoso.com');
  if (options.cancel) fields.set('cancel', 'Cancel');
  else fields.set('signin', 'Sign in');
  const signIn = await fetch(action, { method: 'POST', body: fields, redirect: 'manual' });
  if (signIn.status !== 302) throw new Error(`sign-in answered ${signIn.status}: ${await signIn.text()}`);
  const callback = new URL(signIn.headers.get('location')!);
  if (options.tamperState)
    callback.searchParams.set('state', options.tamperState(callback.searchParams.get('state') ?? ''));
  await options.beforeCallback?.();
  const headers: Record<string, string> = { accept: options.accept ?? 'text/html' };
  if (!options.dropCookie) headers.cookie = cookies;
  const res = await fetch(callback, { headers, redirect: 'manual' });
  return {
    status: res.status,
    body: await res.text(),
    contentType: res.headers.get('content-type') ?? '',
    headers: res.headers,
  };
}
