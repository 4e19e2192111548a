import type { Connection } from '../lib/config/connections.js';
import type { HttpAnswer } from '../lib/http/answer.js';
import { ANTI_FORGERY_FIELD } from '../lib/http/anti-forgery.js';
import { escapeHtml, formToProviderHeaders, htmlPage } from './page.js';
import { scopesInWords } from './scope-words.js';

/**
 * The page before a consent begins (docs/design.md, "Invitations"): an invitation link (`/api/connect/…`)
 * and `/api/start` opened from another site both show it, so a sign-in only ever starts from a
 * button on the broker's own page. It says which connection, which account, what the service will
 * be able to do and, for a link, until when; the one button POSTs back with the anti-forgery token.
 */

const STYLE = `<style>
ul.can{padding-left:1.2rem}ul.can li{margin:.2rem 0}
button.primary{font:inherit;font-weight:600;padding:.6rem 1.2rem;border:0;border-radius:4px;background:#0f6cbd;color:#fff;cursor:pointer;min-height:44px}
button.primary:hover,button.primary:focus-visible{background:#0c3b5e}button.primary:focus-visible{outline:2px solid #0f6cbd;outline-offset:2px}
</style>`;

/** `displayName` when the definition has one (managed connections may), else the id. */
export function connectionName(connection: Connection): string {
  const name = (connection as { displayName?: unknown }).displayName;
  return typeof name === 'string' && name.trim() !== '' ? name : connection.id;
}

export interface ConfirmPageOptions {
  connection: Connection;
  /** Where the button POSTs (this page's own path and query). */
  action: string;
  antiForgery: string;
  /** An invitation link's expiry (ISO). */
  expiresAt?: string;
  /** Another account may take the connection over. */
  replace?: boolean;
}

export function confirmPage(options: ConfirmPageOptions): HttpAnswer {
  const { connection } = options;
  const name = connectionName(connection);
  const title = name === connection.id ? `<code>${escapeHtml(name)}</code>` : escapeHtml(name);
  const who = connection.expectedAccount
    ? `<p>Sign in as <strong>${escapeHtml(connection.expectedAccount)}</strong>; any other account is refused.</p>`
    : '<p>Sign in with the account this connection should use.</p>';
  const replace = options.replace
    ? '<p class="warn">This replaces the account now connected, if there is one.</p>'
    : '';
  const can = scopesInWords(connection.scopes)
    .map((w) => `<li>${escapeHtml(w)}</li>`)
    .join('');
  const expires = options.expiresAt
    ? `<p class="muted">This link works once, until <time datetime="${escapeHtml(options.expiresAt)}">${escapeHtml(options.expiresAt.slice(0, 16).replace('T', ' '))} UTC</time>.</p>`
    : '';
  const body = `${STYLE}<h1>Connect ${title}</h1>
<p>The token broker asks for access to an account for the connection ${title}${name === connection.id ? '' : ` (<code>${escapeHtml(connection.id)}</code>)`}.</p>
${who}${replace}
<h2>The services using this connection will be able to</h2>
<ul class="can">${can}</ul>
${expires}
<form method="post" action="${escapeHtml(options.action)}">
<input type="hidden" name="${ANTI_FORGERY_FIELD}" value="${escapeHtml(options.antiForgery)}">
<button class="primary" type="submit">Continue to sign in</button>
</form>
<p class="muted">Nothing happens until you press the button. If you did not expect this page, close it.</p>`;
  return htmlPage(200, `Connect ${name}`, body, formToProviderHeaders());
}
