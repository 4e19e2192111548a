import type { Cookie, HttpRequest } from '@azure/functions';
import { BrokerError } from '../lib/errors.js';
import { ANTI_FORGERY_COOKIE, ANTI_FORGERY_MAX_AGE_S } from '../lib/http/anti-forgery.js';

/** The broker's own forms carry a token and a few short fields: anything bigger is not one of them. */
const MAX_FORM_BYTES = 8 * 1024;

/** A POSTed HTML form (`application/x-www-form-urlencoded`), or 400/413 problem. */
export async function readForm(request: HttpRequest): Promise<URLSearchParams> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new BrokerError('invalid_request', 'Send the form as application/x-www-form-urlencoded.');
  }
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > MAX_FORM_BYTES) throw new BrokerError('payload_too_large', 'The form is too large.');
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_FORM_BYTES)
    throw new BrokerError('payload_too_large', 'The form is too large.');
  return new URLSearchParams(text);
}

/** The double-submit cookie: SameSite=Strict, so no other site's page sends it along. */
export function antiForgeryCookie(value: string, publicUrl: string): Cookie {
  return {
    name: ANTI_FORGERY_COOKIE,
    value,
    maxAge: ANTI_FORGERY_MAX_AGE_S,
    path: '/api',
    httpOnly: true,
    sameSite: 'Strict',
    secure: publicUrl.startsWith('https:'),
  };
}
