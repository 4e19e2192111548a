import type { HttpAnswer } from '../lib/http/answer.js';
import { escapeHtml, htmlPage } from './page.js';

/** The end of a consent, either flow: which account is now connected; never a token. */
export function connectedPage(connectionId: string, account: string | undefined): HttpAnswer {
  const id = escapeHtml(connectionId);
  const who = account ? ` as <strong>${escapeHtml(account)}</strong>` : '';
  return htmlPage(
    200,
    'Connected',
    `<h1>Connected</h1><p>Connection <code>${id}</code> is now connected${who}.</p>
<p>The broker keeps its refresh token and hands out access tokens at <code>/api/token?connection=${id}</code>. You can close this window.</p>`,
  );
}
