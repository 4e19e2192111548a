import { randomBytes } from 'node:crypto';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import type { DevicePoll, DeviceStart } from '../lib/consent/device-service.js';
import { BrokerError } from '../lib/errors.js';
import { escapeHtml, htmlPage, prefersHtml, scriptPageHeaders } from '../lib/http/html.js';
import { toProblem } from '../lib/http/problem.js';
import type { Logger } from '../lib/logger.js';

/**
 * What `/api/start` and `/api/start/poll` show for device-code connections: a page with the user code
 * that polls the broker from a small inline script (CSP nonce), with a no-JavaScript fallback, or
 * JSON. The device code never appears: the poll URL carries it sealed.
 */

const NO_STORE = { 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' };

/** `/api/start/poll` for an attempt; the function key rides along only when it came in the query. */
export function pollPath(connectionId: string, attempt: string, key: string | undefined): string {
  const params = new URLSearchParams({ connection: connectionId, attempt });
  if (key) params.set('code', key);
  return `/api/start/poll?${params}`;
}

/** `/api/start` for a new attempt, with the same key rule. */
function startPath(connectionId: string, key: string | undefined): string {
  const params = new URLSearchParams({ connection: connectionId });
  if (key) params.set('code', key);
  return `/api/start?${params}`;
}

/** JSON only when asked for; a browser (or anything accepting `*\/*`) gets the page. */
export function startWantsJson(request: HttpRequest): boolean {
  const accept = request.headers.get('accept');
  return !prefersHtml(accept) && /application\/(problem\+)?json/.test(accept ?? '');
}

const STYLE = `<style>
.user-code{display:inline-block;font:700 2.2rem/1.2 ui-monospace,Consolas,monospace;letter-spacing:.12em;padding:.4rem .9rem;margin:.3rem 0;background:#eef0f3;border-radius:6px;user-select:all}
.steps li{margin:.5rem 0}button{font:inherit;padding:.3rem .8rem;border-radius:4px;border:1px solid #8a949e;background:#fff;cursor:pointer}
#status{font-weight:600}
</style>`;

function expiryText(expiresAt: number, expiresIn: number): string {
  const iso = new Date(expiresAt).toISOString();
  const minutes = Math.max(1, Math.round(expiresIn / 60));
  return `The code expires at <time id="expires" datetime="${escapeHtml(iso)}">${escapeHtml(iso.slice(11, 16))} UTC</time> (in about ${minutes} minute${minutes === 1 ? '' : 's'}).`;
}

function steps(userCode: string, verificationUri: string, expectedAccount: string | undefined): string {
  const who = expectedAccount
    ? `Sign in as <strong>${escapeHtml(expectedAccount)}</strong>; any other account is refused.`
    : 'Sign in with the account this connection should use.';
  return `<ol class="steps">
<li>Open <a href="${escapeHtml(verificationUri)}" target="_blank" rel="noopener noreferrer">${escapeHtml(verificationUri)}</a>, on this or any other device.</li>
<li>Enter this code:<br><span class="user-code" id="user-code">${escapeHtml(userCode)}</span> <button type="button" id="copy" hidden>Copy</button></li>
<li>${who}</li>
</ol>`;
}

// Every value the script needs comes from data- attributes; it writes with textContent only.
const SCRIPT = `(() => {
  const root = document.getElementById('device');
  const status = document.getElementById('status');
  const copy = document.getElementById('copy');
  const code = document.getElementById('user-code');
  const expires = document.getElementById('expires');
  let url = root.dataset.poll;
  let wait = Number(root.dataset.interval) * 1000;
  if (expires) expires.textContent = new Date(expires.dateTime).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (copy && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener('click', () => {
      navigator.clipboard.writeText(code.textContent.trim()).then(() => { copy.textContent = 'Copied'; });
    });
  }
  const finish = (text, ok) => {
    status.textContent = text;
    status.className = ok ? 'connected' : 'needs_consent';
    for (const el of document.querySelectorAll('.while-waiting')) el.hidden = true;
  };
  const poll = async () => {
    let res;
    let body = {};
    try {
      res = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
      body = await res.json().catch(() => ({}));
    } catch {
      setTimeout(poll, wait);
      return;
    }
    if (res.ok && body.status === 'pending') {
      const next = new URL(body.pollUrl, location.href);
      url = next.pathname + next.search;
      wait = Math.max(1, Number(body.interval) || 5) * 1000;
      setTimeout(poll, wait);
    } else if (res.ok && body.status === 'connected') {
      finish('Connected' + (body.account ? ' as ' + body.account : '') + '. You can close this window.', true);
    } else if (res.ok) {
      finish(body.detail || 'The sign-in ended (' + body.status + ').', false);
    } else if (res.status === 503) {
      setTimeout(poll, Math.max(wait, (Number(res.headers.get('retry-after')) || 0) * 1000));
    } else {
      finish((body.detail || 'The broker answered HTTP ' + res.status + '.') + (body.code ? ' (' + body.code + ')' : ''), false);
    }
  };
  setTimeout(poll, wait);
})();`;

/** `/api/start` for a device-code connection: JSON `{userCode, verificationUri, expiresIn, interval, pollUrl}` or the page. */
export function deviceStartResponse(
  request: HttpRequest,
  started: DeviceStart,
  options: { publicUrl: string; key: string | undefined; expectedAccount: string | undefined },
): HttpResponseInit {
  const poll = pollPath(started.connectionId, started.attempt, options.key);
  if (startWantsJson(request)) {
    const body: Record<string, unknown> = {
      userCode: started.userCode,
      verificationUri: started.verificationUri,
      expiresIn: started.expiresIn,
      interval: started.interval,
      pollUrl: `${options.publicUrl}${poll}`,
    };
    if (started.verificationUriComplete) body.verificationUriComplete = started.verificationUriComplete;
    if (started.message) body.message = started.message;
    return { status: 200, headers: NO_STORE, jsonBody: body };
  }
  const nonce = randomBytes(16).toString('base64');
  const id = escapeHtml(started.connectionId);
  const body = `${STYLE}
<div id="device" data-poll="${escapeHtml(poll)}" data-interval="${started.interval}">
<h1>Connect <code>${id}</code></h1>
${steps(started.userCode, started.verificationUri, options.expectedAccount)}
<p class="muted">${expiryText(started.expiresAt, started.expiresIn)}</p>
<p id="status" role="status" aria-live="polite">Waiting for you to sign in…</p>
<p class="while-waiting"><a class="button" href="${escapeHtml(poll)}">I have signed in</a>
<span class="muted">This page notices by itself; without JavaScript, use the button once you have signed in.</span></p>
</div>
<script nonce="${nonce}">${SCRIPT}</script>`;
  return htmlPage(200, `Connect ${started.connectionId}`, body, scriptPageHeaders(nonce));
}

/** `/api/start/poll` for a browser without JavaScript: re-shows the code and checks again by itself. */
export function devicePollPage(
  connectionId: string,
  result: DevicePoll,
  options: { key: string | undefined; expectedAccount: string | undefined },
): HttpResponseInit {
  const id = escapeHtml(connectionId);
  const again = `<p><a class="button" href="${escapeHtml(startPath(connectionId, options.key))}">Start again</a></p>`;
  switch (result.status) {
    case 'pending': {
      const poll = pollPath(connectionId, result.attempt, options.key);
      const body = `${STYLE}<h1>Waiting for the sign-in to <code>${id}</code></h1>
<p>Nobody has finished signing in with this code yet.</p>
${steps(result.userCode, result.verificationUri, options.expectedAccount)}
<p class="muted">The code expires in about ${Math.max(1, Math.round(result.expiresIn / 60))} minute(s). This page checks again every ${result.interval} s.</p>
<p><a class="button" href="${escapeHtml(poll)}">I have signed in</a></p>`;
      // The Refresh header works without JavaScript and without loosening the CSP.
      return htmlPage(200, `Connect ${connectionId}`, body, { Refresh: `${result.interval}; url=${poll}` });
    }
    case 'connected': {
      const who = result.account ? ` as <strong>${escapeHtml(result.account)}</strong>` : '';
      return htmlPage(
        200,
        'Connected',
        `<h1>Connected</h1><p>Connection <code>${id}</code> is now connected${who}.</p>
<p>The broker keeps its refresh token and hands out access tokens at <code>/api/token?connection=${id}</code>. You can close this window.</p>`,
      );
    }
    case 'declined':
    case 'expired':
      return htmlPage(
        200,
        result.status === 'declined' ? 'Sign-in declined' : 'Code expired',
        `<h1>${result.status === 'declined' ? 'Sign-in declined' : 'Code expired'}</h1><p>${escapeHtml(result.detail)}</p>${again}`,
      );
  }
}

/** A poll's JSON: `{status, account?}`, plus `pollUrl` and `interval` while pending, `detail` when ended. */
export function devicePollJson(
  connectionId: string,
  result: DevicePoll,
  options: { publicUrl: string; key: string | undefined },
): HttpResponseInit {
  let body: Record<string, unknown>;
  switch (result.status) {
    case 'pending':
      body = {
        status: 'pending',
        interval: result.interval,
        expiresIn: result.expiresIn,
        pollUrl: `${options.publicUrl}${pollPath(connectionId, result.attempt, options.key)}`,
      };
      break;
    case 'connected':
      body = { status: 'connected', account: result.account };
      break;
    case 'declined':
    case 'expired':
      body = { status: result.status, detail: result.detail };
      if (result.providerError) {
        const { error, aadsts } = result.providerError;
        body.providerError = aadsts === undefined ? { error } : { error, aadsts };
      }
      break;
  }
  return { status: 200, headers: NO_STORE, jsonBody: body };
}

/** A failed poll, for a browser: the problem in plain words, and a way to start again. */
export function devicePollErrorPage(
  err: unknown,
  connectionId: string | undefined,
  options: { publicUrl: string; key: string | undefined; logger: Logger },
): HttpResponseInit {
  const p = toProblem(err, options.publicUrl, options.logger);
  const provider = p.providerError
    ? `<p class="muted">Provider said: <code>${escapeHtml(p.providerError.error)}</code>${p.providerError.aadsts ? ` (AADSTS${escapeHtml(p.providerError.aadsts)})` : ''}</p>`
    : '';
  const again = connectionId
    ? `<p><a class="button" href="${escapeHtml(startPath(connectionId, options.key))}">Start again</a></p>`
    : '';
  const retryAfter = err instanceof BrokerError ? err.retryAfter : undefined;
  const headers: Record<string, string> =
    p.code === 'upstream_unavailable'
      ? { 'Retry-After': String(Math.max(1, Math.ceil(retryAfter ?? 5))) }
      : {};
  return htmlPage(
    p.status,
    p.title,
    `<h1>${escapeHtml(p.title)}</h1><p>${escapeHtml(p.detail)}</p>${provider}${again}<p class="muted">Status ${p.status}, code <code>${escapeHtml(p.code)}</code></p>`,
    headers,
  );
}
