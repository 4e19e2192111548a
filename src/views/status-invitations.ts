import { ANTI_FORGERY_FIELD } from '../lib/http/anti-forgery.js';
import type { CreatedInvitation, InvitationView } from '../lib/invitations/invitation-service.js';
import { escapeHtml } from './page.js';

/**
 * The status page's invitation forms (docs/design.md, "Invitations"): "Invite" on every connection, the
 * pending invitations with their expiry and a revoke button, and the new link with a copy button.
 * Every form is a POST to the status page with the anti-forgery token; buttons are real buttons, so
 * the keyboard reaches them and a phone shows them full width.
 */

/** Where the page's forms POST, and the token they carry. */
export interface StatusForms {
  action: string;
  antiForgery: string;
}

export const FORM_STYLE = `<style>
form.inline{display:inline}button.small{font:inherit;font-size:.9rem;padding:.25rem .7rem;border-radius:4px;border:1px solid #8a949e;background:#fff;cursor:pointer;min-height:32px}
button.small:focus-visible{outline:2px solid #0f6cbd;outline-offset:2px}
.notice{background:#eaf4fd;border:1px solid #9cc8ef;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.notice input{width:100%;box-sizing:border-box;font:14px ui-monospace,Consolas,monospace;padding:.4rem;margin:.3rem 0}
@media (max-width:40rem){button.small{width:100%;min-height:44px;margin-top:.3rem}}
</style>`;

function form(forms: StatusForms, fields: Record<string, string>, button: string, label: string): string {
  const hidden = Object.entries({ [ANTI_FORGERY_FIELD]: forms.antiForgery, ...fields })
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
  return `<form class="inline" method="post" action="${escapeHtml(forms.action)}">${hidden}<button class="small" type="submit" aria-label="${escapeHtml(label)}">${escapeHtml(button)}</button></form>`;
}

/** "Invite" for one connection: a new 7-day link, shown once on the page that answers. */
export function inviteForm(connectionId: string, forms: StatusForms): string {
  return form(
    forms,
    { do: 'invite', connection: connectionId },
    'Invite',
    `Invite the owner of ${connectionId}`,
  );
}

/** Rows of pending invitations a page shows (soonest expiry first): thousands would drown it. */
export const PENDING_SHOWN = 50;

/** The pending invitations, soonest expiry first, each with its revoke button (the first 50). */
export function pendingInvitations(invitations: InvitationView[], forms: StatusForms): string {
  if (invitations.length === 0) return '';
  const rows = invitations
    .slice(0, PENDING_SHOWN)
    .map(
      (i) => `<tr data-invitation="${escapeHtml(i.id)}">
<td><code>${escapeHtml(i.connection)}</code>${i.note ? `<br><span class="muted">${escapeHtml(i.note)}</span>` : ''}</td>
<td data-label="Expires"><time datetime="${escapeHtml(i.expiresAt)}">${escapeHtml(i.expiresAt.slice(0, 16).replace('T', ' '))} UTC</time></td>
<td data-label="By">${escapeHtml(i.createdBy.name ?? i.createdBy.id ?? '—')}${i.replace ? ' <span class="warn">(replaces the account)</span>' : ''}</td>
<td>${form(forms, { do: 'revoke', connection: i.connection, invitation: i.id }, 'Revoke', `Revoke the invitation for ${i.connection}`)}</td>
</tr>`,
    )
    .join('\n');
  const more =
    invitations.length > PENDING_SHOWN
      ? `<p class="muted">The ${PENDING_SHOWN} expiring soonest are shown. A connection's own: <code>GET /api/connections/{id}/invitations</code>.</p>`
      : '';
  return `<h2>Pending invitations (${invitations.length})</h2><table class="invitations"><thead><tr><th>Connection</th><th>Expires</th><th>By</th><th></th></tr></thead><tbody>${rows}</tbody></table>${more}`;
}

/** The link just made: shown once (only its hash is kept), selectable, with a copy button. */
export function inviteNotice(connectionId: string, created: CreatedInvitation): string {
  return `<div class="notice" role="status" id="invitation">
<p><strong>Invitation for <code>${escapeHtml(connectionId)}</code></strong>: send this link to the owner of the mailbox. It works once, until ${escapeHtml(created.expiresAt.slice(0, 16).replace('T', ' '))} UTC, and is shown only now.</p>
<label for="invitation-url" class="muted">Link</label>
<input id="invitation-url" type="text" readonly value="${escapeHtml(created.url)}">
<button class="small" type="button" id="copy-invitation">Copy link</button>
</div>`;
}

/** The one script of the page that shows a new link: the copy button (allowed by a CSP nonce). */
export const COPY_SCRIPT = `(() => {
  const input = document.getElementById('invitation-url');
  const button = document.getElementById('copy-invitation');
  if (!input || !button) return;
  input.addEventListener('focus', () => input.select());
  button.addEventListener('click', () => {
    input.select();
    const done = () => { button.textContent = 'Copied'; };
    if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, () => document.execCommand('copy') && done());
    else if (document.execCommand('copy')) done();
  });
})();`;

/** A short line after a revoke (or a form that could not be done). */
export function plainNotice(text: string): string {
  return `<div class="notice" role="status"><p>${escapeHtml(text)}</p></div>`;
}
