import { ANTI_FORGERY_FIELD } from '../lib/http/anti-forgery.js';
import { escapeHtml } from './page.js';
import type { StatusForms } from './status-invitations.js';

/**
 * The status page's forms for managed connections ("Connections at runtime"): "Add connection" from
 * a template, and "Delete" with a confirmation step. POST forms with the anti-forgery token, like
 * the invitation forms beside them; labelled fields, so keyboards and screen readers find them.
 */

export const ADMIN_STYLE = `<style>
form.add{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.6rem 1rem;align-items:end;margin:.5rem 0 1rem}
form.add label{display:block;font-size:.9rem;color:#3b444d}form.add input,form.add select{width:100%;box-sizing:border-box;font:inherit;padding:.35rem;min-height:36px}
button.danger{border-color:#b42318;color:#b42318}
</style>`;

function hidden(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
}

/** "Add connection": id, template, expected account, display name (a PUT /api/connections/{id} with If-None-Match: *). */
export function addConnectionForm(templates: string[], forms: StatusForms): string {
  const template = templates.length
    ? `<select id="add-template" name="template" required>${templates.map((t) => `<option value="${escapeHtml(t)}">${escapeHtml(t)}</option>`).join('')}</select>`
    : '<input id="add-template" name="template" required maxlength="63" pattern="[a-z0-9][a-z0-9\\-]{0,62}">';
  return `<h2>Add connection</h2>
<form class="add" method="post" action="${escapeHtml(forms.action)}">${hidden({ [ANTI_FORGERY_FIELD]: forms.antiForgery, do: 'add' })}
<div><label for="add-id">Connection id</label><input id="add-id" name="id" required maxlength="63" pattern="[a-z0-9][a-z0-9\\-]{0,62}" autocomplete="off" placeholder="desk7-mail"></div>
<div><label for="add-template">Template</label>${template}</div>
<div><label for="add-account">Expected account</label><input id="add-account" name="expectedAccount" type="email" maxlength="256" autocomplete="off" placeholder="desk7@contoso.com"></div>
<div><label for="add-name">Display name</label><input id="add-name" name="displayName" maxlength="100" autocomplete="off" placeholder="Front desk 7"></div>
<div><button class="small" type="submit">Add connection</button></div>
</form>`;
}

/** "Delete" on a managed connection's row: asks first (the next page confirms). */
export function deleteForm(connectionId: string, forms: StatusForms): string {
  return `<form class="inline" method="post" action="${escapeHtml(forms.action)}">${hidden({ [ANTI_FORGERY_FIELD]: forms.antiForgery, do: 'delete', connection: connectionId })}<button class="small danger" type="submit" aria-label="Delete connection ${escapeHtml(connectionId)}">Delete</button></form>`;
}

/** The confirmation: what goes (the definition, its refresh token, its links), and two buttons. */
export function deleteConfirmation(connectionId: string, forms: StatusForms, cancelHref: string): string {
  const id = escapeHtml(connectionId);
  return `<div class="notice" role="alertdialog" aria-labelledby="confirm-delete">
<p id="confirm-delete"><strong>Delete connection <code>${id}</code>?</strong> Its definition, its refresh token and its pending invitations go; services asking for its tokens get 404.</p>
<form class="inline" method="post" action="${escapeHtml(forms.action)}">${hidden({ [ANTI_FORGERY_FIELD]: forms.antiForgery, do: 'delete', connection: connectionId, confirm: 'yes' })}<button class="small danger" type="submit" autofocus>Delete ${id}</button></form>
<a href="${escapeHtml(cancelHref)}">Cancel</a>
</div>`;
}
