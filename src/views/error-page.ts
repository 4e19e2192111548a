import type { HttpAnswer } from '../lib/http/answer.js';
import { problemHeaders, toProblem } from '../lib/http/problem.js';
import type { Logger } from '../lib/logger.js';
import { escapeHtml, htmlPage } from './page.js';

/**
 * A failure as a page, for the routes a person's browser opens: the same problem (status, title,
 * detail, provider error, headers) as the JSON body, in words, with an optional way on.
 */
export function errorPage(
  err: unknown,
  options: { publicUrl: string; logger?: Logger; action?: { href: string; label: string } },
): HttpAnswer {
  const p = toProblem(err, options.publicUrl, options.logger);
  const provider = p.providerError
    ? `<p class="muted">Provider said: <code>${escapeHtml(p.providerError.error)}</code>${p.providerError.aadsts ? ` (AADSTS${escapeHtml(p.providerError.aadsts)})` : ''}</p>`
    : '';
  const remedy = p.remedy
    ? `<p class="remedy"><strong>What to do:</strong> ${escapeHtml(p.remedy.text)}</p>`
    : '';
  const action = options.action
    ? `<p><a class="button" href="${escapeHtml(options.action.href)}">${escapeHtml(options.action.label)}</a></p>`
    : '';
  return htmlPage(
    p.status,
    p.title,
    `<h1>${escapeHtml(p.title)}</h1><p>${escapeHtml(p.detail)}</p>${remedy}${provider}${action}<p class="muted">Status ${p.status}, code <code>${escapeHtml(p.code)}</code></p>`,
    problemHeaders(err),
  );
}
