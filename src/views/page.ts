import type { HttpAnswer } from '../lib/http/answer.js';

/**
 * The page frame every view shares: one style, one strict policy, nothing loaded from elsewhere.
 */

/** Everything echoed into a page goes through here. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * The page policy plus one inline script, allowed by a per-response nonce, that may call back to
 * this origin (`fetch`) and nowhere else. For `htmlPage`'s `extraHeaders`.
 */
export function scriptPageHeaders(nonce: string): Record<string, string> {
  return { 'Content-Security-Policy': `${PAGE_CSP}; script-src 'nonce-${nonce}'; connect-src 'self'` };
}

/**
 * For a page whose form is answered with a redirect to the provider's sign-in (the confirm page):
 * browsers apply `form-action` to that redirect too. The provider may be any https origin, or plain
 * http on loopback (the only plain http the broker accepts for endpoints); the page has no script
 * and escapes everything, so no injected form can make use of the wider list. (CSP has no syntax
 * for an IPv6 literal: a provider on http://[::1] would need a host name.)
 */
export function formToProviderHeaders(): Record<string, string> {
  return {
    'Content-Security-Policy': PAGE_CSP.replace(
      "form-action 'self'",
      "form-action 'self' https: http://localhost:* http://127.0.0.1:*",
    ),
  };
}

/** Pages carry no script and load nothing: the CSP says so, and no page can be framed or leak a Referer. */
const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Content-Security-Policy': PAGE_CSP,
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
};

const STYLE = `
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1b1f24}
main{max-width:68rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px #0002;overflow-x:auto}
h1{font-size:1.4rem;margin-top:0}h2{font-size:1.1rem;margin:1.5rem 0 .3rem}
.remedy{margin:.4rem 0 0;max-width:32rem;font-size:.9rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.5rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
code{background:#eef0f3;padding:.1rem .3rem;border-radius:3px}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:999px;font-weight:600;font-size:.9rem}
.badge.connected{background:#dff6e4;color:#0a5d25}.badge.needs_consent{background:#fde2e0;color:#8c1d18}.badge.not_connected{background:#fff3c4;color:#5c4a00}
.warn{color:#8c1d18;font-weight:600}.ok{color:#0a5d25}
a.button{display:inline-block;padding:.3rem .8rem;border-radius:4px;background:#0f6cbd;color:#fff;text-decoration:none}
a.button:hover,a.button:focus-visible{background:#0c3b5e}a.button:focus-visible{outline:2px solid #0f6cbd;outline-offset:2px}
th,time,.badge,a.button{white-space:nowrap}
.muted{color:#5f6b76}td>.muted{font-size:.85rem}td:first-child>.muted{white-space:nowrap}
@media (max-width:40rem){main{margin:0;padding:1rem;border-radius:0;box-shadow:none}
thead{display:none}tr{display:block;padding:.6rem 0;border-bottom:1px solid #e3e6ea}td{display:block;border:0;padding:.15rem 0}
td[data-label]::before{content:attr(data-label);display:inline-block;min-width:7.5rem;color:#5f6b76}td:last-child{padding-top:.4rem}}`;

/** A complete page; `body` is HTML the caller built with `escapeHtml`. */
export function htmlPage(
  status: number,
  title: string,
  body: string,
  extraHeaders: Record<string, string> = {},
): HttpAnswer {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
  return { status, headers: { ...PAGE_HEADERS, ...extraHeaders }, body: html };
}
