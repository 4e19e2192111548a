import type { Connection } from '../lib/config/connections.js';
import type { Deadline } from '../lib/health/deadlines.js';
import type { StatusPage } from '../lib/health/status-paging.js';
import type { ConnectionHealth } from '../lib/health/status-service.js';
import type { HttpAnswer } from '../lib/http/answer.js';
import type { InvitationView } from '../lib/invitations/invitation-service.js';
import { connectionName } from './confirm-page.js';
import { startPath } from './links.js';
import { escapeHtml, htmlPage, scriptPageHeaders } from './page.js';
import { ADMIN_STYLE, addConnectionForm, deleteForm } from './status-admin.js';
import {
  COPY_SCRIPT,
  FORM_STYLE,
  inviteForm,
  pendingInvitations,
  type StatusForms,
} from './status-invitations.js';
import { isPaged, pager, searchForm } from './status-paging.js';

/** The admin parts of the page (invitations): forms, pending invitations, what the last form did. */
export interface StatusAdmin {
  forms: StatusForms;
  invitations: InvitationView[];
  /** HTML the caller built with `escapeHtml` (`inviteNotice`, `plainNotice`). */
  notice?: string;
  /** The page shows a new link: allow the copy button's script with this nonce. */
  scriptNonce?: string;
  /** Managed connections (they get "Delete"), and the templates "Add connection" offers. */
  managed?: ReadonlySet<string>;
  templates?: string[];
}

const WORDS: Record<ConnectionHealth['status'], string> = {
  connected: 'Connected',
  needs_consent: 'Needs consent',
  not_connected: 'Not connected',
};

const DEADLINE_WORDS: Record<Deadline['kind'], string> = {
  refresh_token_inactivity: 'refresh token idle limit',
  hard_expiry: 'consent expires',
  client_secret_expiry: 'client secret expires',
  client_certificate_expiry: 'client certificate expires',
};

/** "in 12 days" / "3 days ago": what a person reads first; the exact time is in the title. */
function relative(at: string, now: number): string {
  const days = Math.round((Date.parse(at) - now) / 86_400_000);
  if (days === 0) return 'today';
  return days > 0 ? `in ${days} day${days === 1 ? '' : 's'}` : `${-days} day${days === -1 ? '' : 's'} ago`;
}

function time(at: string | null, now: number): string {
  return at
    ? `<time datetime="${escapeHtml(at)}" title="${escapeHtml(at)}">${relative(at, now)}</time>`
    : '—';
}

/** The one thing to click for a remedy: sign in again, or the app registration to fix. */
function actionOf(c: ConnectionHealth, connection: Connection | undefined, key: string | undefined) {
  // An app-only connection has nobody to sign in: its remedy text names the admin step instead.
  const appOnly = c.flow === 'client_credentials';
  const start = { href: startPath(c.id, key), label: c.status === 'not_connected' ? 'Connect' : 'Reconnect' };
  const kind = c.remedy?.kind;
  if (kind === 'wait') return undefined;
  const renewSecret = kind === 'renew_before_deadline' && c.nextDeadline?.kind === 'client_secret_expiry';
  if (kind === 'new_client_secret' || kind === 'fix_app_registration' || renewSecret) {
    const portal = appRegistrationUrl(
      connection,
      kind === 'fix_app_registration' ? 'Overview' : 'Credentials',
    );
    return portal ? { href: portal, label: 'Open app registration' } : undefined;
  }
  return appOnly ? undefined : start;
}

/** The Entra admin center's page of the connection's app (public cloud only), else none. */
function appRegistrationUrl(
  c: Connection | undefined,
  blade: 'Overview' | 'Credentials',
): string | undefined {
  if (c?.provider !== 'entra' || new URL(c.authority).host !== 'login.microsoftonline.com') return undefined;
  return `https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/${blade}/appId/${encodeURIComponent(c.clientId)}`;
}

/** Account pinning: only a consent begun from this link may connect another account. */
function changeAccount(c: ConnectionHealth, key: string | undefined): string {
  if (c.status === 'not_connected' || c.flow === 'client_credentials') return '';
  return ` <a class="muted" href="${escapeHtml(startPath(c.id, key, true))}">Change account</a>`;
}

function row(
  c: ConnectionHealth,
  connection: Connection | undefined,
  key: string | undefined,
  now: number,
  admin: StatusAdmin | undefined,
): string {
  const forms = admin?.forms;
  const act = actionOf(c, connection, key);
  const deadline = c.nextDeadline
    ? `<span class="${c.warning ? 'warn' : ''}">${DEADLINE_WORDS[c.nextDeadline.kind]} ${time(c.nextDeadline.at, now)}</span>`
    : '—';
  const remedy = c.remedy
    ? `<p class="remedy" data-kind="${escapeHtml(c.remedy.kind)}"><strong>What to do:</strong> ${escapeHtml(c.remedy.text)}</p>`
    : '';
  // Who got its tokens lately, as this instance saw it (another instance's callers are on its page).
  const callers = c.callers.length
    ? `<br><span class="muted callers">used by ${c.callers
        .slice(0, 3)
        .map((u) => `${escapeHtml(u.name)} ${time(u.at, now)}`)
        .join(', ')}</span>`
    : '';
  // data-label names each cell where a narrow window shows the rows as cards (see the page style).
  return `<tr>
<td><code>${escapeHtml(c.id)}</code>${connection && connectionName(connection) !== c.id ? ` ${escapeHtml(connectionName(connection))}` : ''}<br><span class="muted">${escapeHtml(c.provider)}, ${escapeHtml(c.flow.replace('_', ' '))}</span>${callers}</td>
<td data-label="Status"><span class="badge ${c.status}">${WORDS[c.status]}</span>${c.lastError ? `<br><span class="muted">${escapeHtml(c.lastError)}</span>` : ''}${remedy}</td>
<td data-label="Account">${escapeHtml(c.account ?? '—')}</td>
<td data-label="Last refresh">${time(c.refreshedAt, now)}</td>
<td data-label="Next deadline">${deadline}</td>
<td>${act ? `<a class="button" href="${escapeHtml(act.href)}">${escapeHtml(act.label)}</a>` : ''}${changeAccount(c, key)}${forms && c.flow !== 'client_credentials' ? ` ${inviteForm(c.id, forms)}` : ''}${forms && admin?.managed?.has(c.id) ? ` ${deleteForm(c.id, forms)}` : ''}</td>
</tr>`;
}

/** The summary of a page 1 served while this instance reads every connection for the first time. */
function countingNote(shown: number, needing: number): string {
  const among = needing
    ? ` ${needing} of them need${needing === 1 ? 's' : ''} a person and ${needing === 1 ? 'is' : 'are'} shown first.`
    : ' None of them needs a person.';
  return `<p class="note counting">This instance is reading every connection for the first time, so there are no counts yet. Shown: the first ${shown} connections by id.${among} Reload shortly for the full list, every connection that needs a person first.</p>`;
}

const HEAD =
  '<thead><tr><th>Connection</th><th>Status</th><th>Account</th><th>Last refresh</th><th>Next deadline</th><th></th></tr></thead>';

/**
 * The status page (no script): the connections that need a person first, each with its remedy in
 * words and its one action, then the healthy ones with a Reconnect link each. Given `paging` (one
 * page of many, `status-paging.ts`), it shows that page with a search box and page links.
 */
export function statusPage(
  connections: ConnectionHealth[],
  options: {
    key: string | undefined;
    now: number;
    catalog?: Connection[];
    paging?: { page: StatusPage; q?: string };
    admin?: StatusAdmin;
  },
): HttpAnswer {
  const config = new Map((options.catalog ?? []).map((c) => [c.id, c]));
  const { admin } = options;
  const table = (list: ConnectionHealth[]) =>
    `<table>${HEAD}<tbody>${list.map((c) => row(c, config.get(c.id), options.key, options.now, admin)).join('\n')}</tbody></table>`;
  const paging = options.paging;
  const rows = paging ? paging.page.items : connections;
  const attention = rows.filter((c) => c.remedy !== null);
  const healthy = rows.filter((c) => c.remedy === null);
  const total = paging ? paging.page.total : connections.length;
  // Under a search, the counts are of the matching connections.
  const n = paging?.q ? paging.page.matched : total;
  const needing = paging ? paging.page.attention : attention.length;
  // A deployment nobody has counted yet: its page's numbers are only of the rows shown (`counting`).
  const counting = paging?.page.counting === true;
  const summary = counting
    ? countingNote(rows.length, attention.length)
    : needing
      ? `<p class="warn">${needing} of ${n} connection${n === 1 ? '' : 's'} need${needing === 1 ? 's' : ''} attention.</p>`
      : `<p class="ok">All ${n} connection${n === 1 ? ' is' : 's are'} healthy.</p>`;
  // A cold instance's page 1: rows read now, counts from the last reading of every connection.
  const counted = paging?.page.countedAt
    ? `<p class="note">Counts as of <time datetime="${escapeHtml(paging.page.countedAt)}">${escapeHtml(paging.page.countedAt.slice(0, 16).replace('T', ' '))} UTC</time>; this instance is reading every connection now: reload for current counts.</p>`
    : '';
  const sections = [
    attention.length
      ? `<h2>Needs a person${counting ? ', among these' : ` (${needing})`}</h2>${table(attention)}`
      : '',
    healthy.length
      ? `<h2>Healthy${counting ? ', among these' : ` (${(paging ? paging.page.matched : rows.length) - needing})`}</h2>${table(healthy)}`
      : '',
  ].join('');
  const paged = paging && isPaged(paging.page, paging.q);
  // While counting: the search box (it waits for the whole list), no page links (no pages known yet).
  const list = counting
    ? `${searchForm(undefined, options.key)}${sections}`
    : paged
      ? `${searchForm(paging.q, options.key)}${sections || '<p>No connection matches.</p>'}${pager(paging.page, paging.q, options.key)}`
      : sections;
  const body = total
    ? `${summary}${counted}${list}`
    : '<p>No connections are configured. Add them to <code>connections.json</code>, or through the admin API (<code>broker connections put</code>).</p>';
  if (!admin) return htmlPage(200, 'Token broker status', `<h1>Token broker status</h1>${body}`);
  const invitations = pendingInvitations(admin.invitations, admin.forms);
  const script = admin.scriptNonce
    ? `<script nonce="${escapeHtml(admin.scriptNonce)}">${COPY_SCRIPT}</script>`
    : '';
  return htmlPage(
    200,
    'Token broker status',
    `${FORM_STYLE}${ADMIN_STYLE}<h1>Token broker status</h1>${admin.notice ?? ''}${body}${invitations}${admin.templates ? addConnectionForm(admin.templates, admin.forms) : ''}${script}`,
    admin.scriptNonce ? scriptPageHeaders(admin.scriptNonce) : {},
  );
}
