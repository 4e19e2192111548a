/**
 * The pages a person sees: the sign-in form, the device login form, and what they answer. They
 * work without JavaScript and load nothing: one inline style allowed by nonce, no script at all.
 */
import { randomBytes } from 'node:crypto';
import { type Answer, answer, NO_STORE } from './http.js';

const SIGN_IN_BANNER = 'Sandbox: a simulated Microsoft Entra ID sign-in. No password is asked.';
const DEVICE_BANNER = 'Sandbox: a simulated Microsoft device sign-in. No password is asked.';

/** The sign-in form, its hidden fields carrying the authorize request back in its POST. */
export function signInPage(o: {
  action: string;
  params: URLSearchParams;
  clientId: string;
  account: string;
  error?: string;
}): Answer {
  const hidden = [...o.params]
    .filter(([name]) => !['account', 'action', 'signin', 'cancel'].includes(name))
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  const content = `<div class="banner">${SIGN_IN_BANNER}</div>
<h1>Sign in</h1>
<p class="app">to continue to <strong>${escapeHtml(o.clientId)}</strong>,
which asks for: <code>${escapeHtml(o.params.get('scope') ?? '')}</code></p>
<form method="post" action="${escapeHtml(o.action)}">
${hidden}
${errorLine(o.error)}
<label for="account">Email, phone, or Skype</label>
<input type="email" name="account" id="account" value="${escapeHtml(o.account)}" autocomplete="username" autofocus>
<div class="buttons">
<button type="submit" name="cancel" value="Cancel" id="cancel" class="secondary" formnovalidate>Cancel</button>
<button type="submit" name="signin" value="Sign in" id="signin" class="primary">Sign in</button>
</div>
</form>`;
  // The form posts to 'self', which then redirects to the app: form-action must allow both.
  // Custom-scheme redirect URIs have the origin 'null', which CSP cannot name.
  const origin = new URL(o.params.get('redirect_uri') ?? '').origin;
  return htmlAnswer(200, page('Sign in to your account', content), origin === 'null' ? '' : origin);
}

/** The device login page: one form for the user code and the account, Continue or Decline. */
export function deviceLoginPage(action: string, userCode: string, error?: string, status = 200): Answer {
  const content = `<div class="banner">${DEVICE_BANNER}</div>
<h1>Enter code</h1>
<p class="app">Enter the code displayed on your app or device, and the account to sign in with.</p>
<form method="post" action="${escapeHtml(action)}">
${errorLine(error)}
<label for="otc">Code</label>
<input type="text" name="otc" id="otc" value="${escapeHtml(userCode)}" autocomplete="off" autofocus>
<label for="account">Email, phone, or Skype</label>
<input type="email" name="account" id="account" value="" autocomplete="username">
<div class="buttons">
<button type="submit" name="decline" value="Decline" id="decline" class="secondary" formnovalidate>Decline</button>
<button type="submit" name="approve" value="Continue" id="approve" class="primary">Continue</button>
</div>
</form>`;
  return htmlAnswer(status, page('Enter code', content));
}

/** What authorize shows for an error it must not send to an unverified redirect URI. */
export function errorPage(description: string): Answer {
  const content = `<h1>Sorry, but we’re having trouble signing you in.</h1>
<p class="err">${escapeHtml(description).replace(/\r\n/g, '<br>')}</p>`;
  return htmlAnswer(400, page('Sign in to your account', content));
}

/** The device login's last word: declined, or signed in as `account`. */
export function deviceDonePage(clientId: string, account?: string): Answer {
  const app = `<strong>${escapeHtml(clientId)}</strong>`;
  if (account === undefined) {
    const content = `<h1>Sign-in declined</h1><p class="app">You declined to sign in to ${app} on your device. You can close this window.</p>`;
    return htmlAnswer(200, page('Sign-in declined', content));
  }
  const content = `<h1>You're signed in</h1><p class="app">You have signed in to ${app} on your device as <strong>${escapeHtml(account)}</strong>. You may now close this window.</p>`;
  return htmlAnswer(200, page('Signed in', content));
}

/** What both forms say to something that is not an email address; undefined when it is one. */
export function accountError(account: string): string | undefined {
  if (/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(account)) return undefined;
  return 'Enter a valid email address, phone number, or Skype name.';
}

const errorLine = (error?: string) =>
  error ? `<p class="err" id="error" role="alert">${escapeHtml(error)}</p>` : '';

/** A page with no external resources; its one inline style is allowed by nonce, scripts not at all. */
function htmlAnswer(status: number, html: (nonce: string) => string, formTarget = ''): Answer {
  const nonce = randomBytes(16).toString('base64');
  const csp = `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'${formTarget ? ` ${formTarget}` : ''}; frame-ancestors 'none'; base-uri 'none'`;
  const security = {
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
  const headers = { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': csp, ...security };
  return answer(status, { ...headers, ...NO_STORE }, html(nonce));
}

const LOGO = `<svg width="108" height="24" viewBox="0 0 108 24" aria-hidden="true"><rect width="10" height="10" fill="#f25022"/><rect x="11" width="10" height="10" fill="#7fba00"/><rect y="11" width="10" height="10" fill="#00a4ef"/><rect x="11" y="11" width="10" height="10" fill="#ffb900"/><text x="28" y="16" font-family="Segoe UI, sans-serif" font-size="14" fill="#737373">Entra ID · sandbox</text></svg>`;

function page(title: string, content: string): (nonce: string) => string {
  return (nonce) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">
body{margin:0;min-height:100vh;background:#f2f2f2;font-family:"Segoe UI",-apple-system,Helvetica,Arial,sans-serif;color:#1b1b1b;display:flex;align-items:center;justify-content:center}
main{background:#fff;width:100%;max-width:440px;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2);box-sizing:border-box}
h1{font-size:24px;font-weight:600;margin:16px 0 12px}
label{display:block;font-size:13px;color:#605e5c;margin-top:16px}
input[type=email]{width:100%;border:0;border-bottom:1px solid #666;padding:6px 0;font-size:15px;outline:none;box-sizing:border-box}
input[type=email]:focus{border-bottom-color:#0067b8}
.buttons{display:flex;justify-content:flex-end;gap:8px;margin-top:28px}
button{min-width:108px;padding:6px 12px;font-size:15px;border:0;cursor:pointer}
.primary{background:#0067b8;color:#fff}.secondary{background:#ccc;color:#1b1b1b}
.banner{background:#fff4ce;font-size:13px;padding:8px;margin:16px 0 0}
.err{color:#e81123;font-size:13px;word-break:break-word}.app{font-size:13px}code{word-break:break-all}
</style></head>
<body><main>${LOGO}
${content}
</main></body></html>`;
}

/** Entities as Entra's own pages write them (`&amp;`, `&quot;`, `&#39;`), not the broker's numeric ones. */
function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}
