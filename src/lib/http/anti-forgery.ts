import { randomToken, safeEqual } from '../crypto/tokens.js';
import { BrokerError } from '../errors.js';
import { parseCookies } from './request.js';

/**
 * Anti-forgery for the broker's own POST forms (docs/design.md, "Invitations"): a double-submit cookie
 * (SameSite=Strict, so another site's page can neither send nor read it) whose value the form
 * repeats in a hidden field, and `Sec-Fetch-Site`, when the browser sends it, must say the form
 * came from this origin. Nothing here is a secret of the broker: the token only proves that whoever
 * posts could read this origin's page.
 */
export const ANTI_FORGERY_COOKIE = 'broker_af';
export const ANTI_FORGERY_FIELD = 'af';
/** The cookie outlives a page left open over lunch, not a working day. */
export const ANTI_FORGERY_MAX_AGE_S = 8 * 60 * 60;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

interface Headers {
  get(name: string): string | null;
}

/** The browser's token when it has a well-formed one (so two open tabs agree), else a new one. */
export function antiForgeryToken(headers: Headers): string {
  const existing = parseCookies(headers.get('cookie')).get(ANTI_FORGERY_COOKIE);
  return existing && TOKEN.test(existing) ? existing : randomToken(32);
}

/** A GET that would act for a browser coming from another site (or typed, for what `strict` covers). */
export function isCrossSiteNavigation(headers: Headers, strict: boolean): boolean {
  const site = headers.get('sec-fetch-site');
  if (site === 'cross-site' || site === 'same-site') return true;
  return strict && site === 'none';
}

/** 403 `forbidden` unless the POST carries the matching token and, when told, came from this origin. */
export function checkAntiForgery(headers: Headers, form: URLSearchParams): void {
  const site = headers.get('sec-fetch-site');
  if (site !== null && site !== 'same-origin') {
    throw new BrokerError(
      'forbidden',
      "This form can only be sent from the broker's own page. Open the link again and press the button there.",
    );
  }
  const cookie = parseCookies(headers.get('cookie')).get(ANTI_FORGERY_COOKIE);
  const field = form.get(ANTI_FORGERY_FIELD);
  if (!cookie || !field || !TOKEN.test(cookie) || !safeEqual(field, cookie)) {
    throw new BrokerError(
      'forbidden',
      'The form is missing its anti-forgery token, or it does not match this browser. Open the link again and press the button there.',
    );
  }
}
