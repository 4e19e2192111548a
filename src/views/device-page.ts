import { randomBytes } from 'node:crypto';
import type { DevicePoll, DeviceStart } from '../lib/consent/device-service.js';
import type { HttpAnswer } from '../lib/http/answer.js';
import { connectedPage } from './connected-page.js';
import { DEVICE_SCRIPT } from './device-script.js';
import { pollPath, startPath } from './links.js';
import { escapeHtml, htmlPage, scriptPageHeaders } from './page.js';

/**
 * What `/api/start` and `/api/start/poll` show a person for device-code connections: the user code,
 * a page that polls the broker from a small inline script (CSP nonce), and a no-JavaScript fallback.
 * The device code never appears: the poll URL carries it sealed.
 */

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

export interface DevicePageOptions {
  key: string | undefined;
  expectedAccount: string | undefined;
  /** Invitations: where the page polls (an anonymous route), instead of `/api/start/poll`. */
  pollPath?: (connectionId: string, attempt: string) => string;
  /** Invitations: there is no `/api/start` to go back to, only the link the owner was sent. */
  noStartAgain?: boolean;
}

function defaultPoll(key: string | undefined) {
  return (connectionId: string, attempt: string) => pollPath(connectionId, attempt, key);
}

/** `/api/start` for a device-code connection, as a page. */
export function deviceStartPage(started: DeviceStart, options: DevicePageOptions): HttpAnswer {
  const poll = (options.pollPath ?? defaultPoll(options.key))(started.connectionId, started.attempt);
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
<script nonce="${nonce}">${DEVICE_SCRIPT}</script>`;
  return htmlPage(200, `Connect ${started.connectionId}`, body, scriptPageHeaders(nonce));
}

/** `/api/start/poll` for a browser without JavaScript: re-shows the code and checks again by itself. */
export function devicePollPage(
  connectionId: string,
  result: DevicePoll,
  options: DevicePageOptions,
): HttpAnswer {
  const id = escapeHtml(connectionId);
  const again = options.noStartAgain
    ? '<p>Open the link you were sent again to try once more.</p>'
    : `<p><a class="button" href="${escapeHtml(startPath(connectionId, options.key))}">Start again</a></p>`;
  switch (result.status) {
    case 'pending': {
      const poll = (options.pollPath ?? defaultPoll(options.key))(connectionId, result.attempt);
      const body = `${STYLE}<h1>Waiting for the sign-in to <code>${id}</code></h1>
<p>Nobody has finished signing in with this code yet.</p>
${steps(result.userCode, result.verificationUri, options.expectedAccount)}
<p class="muted">The code expires in about ${Math.max(1, Math.round(result.expiresIn / 60))} minute(s). This page checks again every ${result.interval} s.</p>
<p><a class="button" href="${escapeHtml(poll)}">I have signed in</a></p>`;
      // The Refresh header works without JavaScript and without loosening the CSP.
      return htmlPage(200, `Connect ${connectionId}`, body, { Refresh: `${result.interval}; url=${poll}` });
    }
    case 'connected':
      return connectedPage(connectionId, result.account);
    case 'declined':
    case 'expired':
      return htmlPage(
        200,
        result.status === 'declined' ? 'Sign-in declined' : 'Code expired',
        `<h1>${result.status === 'declined' ? 'Sign-in declined' : 'Code expired'}</h1><p>${escapeHtml(result.detail)}</p>${again}`,
      );
  }
}
