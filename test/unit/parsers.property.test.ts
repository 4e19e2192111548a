import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseDuration } from '../../src/lib/config/duration.js';
import { parseConnections } from '../../src/lib/config/load.js';
import { seal, unseal } from '../../src/lib/crypto/seal.js';
import { BrokerError, ConfigError } from '../../src/lib/errors.js';
import { parseCookies, parseQuery } from '../../src/lib/http/request.js';
import { processDeviceAuthorizationResponse, processDevicePollResponse } from '../../src/lib/oauth/device.js';
import { parseOAuthError, processTokenResponse } from '../../src/lib/oauth/response.js';
import type { ProviderResponse, TokenEndpointFailure } from '../../src/lib/oauth/types.js';
import { nextOccurrence, parseNcrontab } from '../../src/local/ncrontab.js';
import { serializeCookie } from '../../src/local/server.js';
import { anyText, fuzzParams, jsonField, providerBodies } from '../support/fuzz.js';

const NOW = Date.UTC(2026, 5, 1);

/** A classifier that says which failure it saw, as the dialects' do (always a BrokerError). */
const classify = (failure: TokenEndpointFailure) =>
  new BrokerError('upstream_unavailable', `failed with ${failure.status}`, { retryAfter: 5 });

const field = jsonField;
const tokenishBody = fc.record(
  {
    access_token: field,
    token_type: field,
    expires_in: field,
    expires_on: field,
    scope: field,
    refresh_token: field,
    id_token: field,
    refresh_token_expires_in: field,
    error: field,
    error_description: field,
    error_codes: field,
    device_code: field,
    user_code: field,
    verification_uri: field,
    interval: field,
  },
  { requiredKeys: [] },
);
/** Bodies a provider may send: token-ish JSON, any JSON, truncated JSON, or any text. */
const body = providerBodies(tokenishBody, anyText);
const response = fc.record({
  status: fc.oneof(fc.constantFrom(200, 400, 401, 302, 429, 500, 503), fc.integer({ min: 100, max: 599 })),
  contentType: fc.constantFrom('application/json', 'text/html', 'application/json; charset=utf-8', ''),
  bodyText: body,
});
const asResponse = (r: { status: number; contentType: string; bodyText: string }): ProviderResponse => ({
  status: r.status,
  headers: new Headers(r.contentType ? { 'content-type': r.contentType } : {}),
  bodyText: r.bodyText,
});

describe('token and device responses (any body, any status)', () => {
  it('a token response is a sane TokenSet or a classified BrokerError', () => {
    fc.assert(
      fc.property(response, (r) => {
        try {
          const tokens = processTokenResponse(asResponse(r), NOW, classify);
          expect(typeof tokens.accessToken).toBe('string');
          expect(tokens.accessToken.length).toBeGreaterThan(0);
          expect(Number.isFinite(tokens.expiresIn) && tokens.expiresIn >= 0).toBe(true);
          if (tokens.refreshToken !== undefined) expect(typeof tokens.refreshToken).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(BrokerError);
        }
      }),
      fuzzParams(300),
    );
  });

  it('a device authorization or poll answer is a result or a classified BrokerError, never quoting the device code', () => {
    fc.assert(
      fc.property(response, (r) => {
        for (const process of [processDeviceAuthorizationResponse, processDevicePollResponse]) {
          try {
            process(asResponse(r), NOW, classify);
          } catch (err) {
            expect(err).toBeInstanceOf(BrokerError);
            expect((err as Error).message).not.toContain('device_code');
          }
        }
      }),
      fuzzParams(300),
    );
  });

  it('numbers sent as strings (as ACS sends them) read like numbers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), fc.boolean(), (seconds, asString) => {
        const bodyText = JSON.stringify({
          access_token: 'at',
          token_type: 'Bearer',
          expires_in: asString ? String(seconds) : seconds,
        });
        const tokens = processTokenResponse(
          asResponse({ status: 200, contentType: 'application/json', bodyText }),
          NOW,
          classify,
        );
        expect(tokens.expiresIn).toBe(seconds);
      }),
      fuzzParams(100),
    );
  });
});

describe('error bodies and AADSTS numbers', () => {
  it('any body parses to nothing or to an error with an AADSTS number of at most 9 digits', () => {
    fc.assert(
      fc.property(body, (text) => {
        const parsed = parseOAuthError(text);
        if (parsed === undefined) return;
        expect(typeof parsed.error).toBe('string');
        if (parsed.aadsts !== undefined) {
          expect(Number.isSafeInteger(parsed.aadsts) && parsed.aadsts >= 0).toBe(true);
          expect(String(parsed.aadsts).length).toBeLessThanOrEqual(9);
        }
      }),
      fuzzParams(300),
    );
  });

  it('takes the number from error_description exactly when it has 1–9 digits', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{1,14}$/), anyText, (digits, rest) => {
        const parsed = parseOAuthError(
          JSON.stringify({
            error: 'invalid_grant',
            error_description: `AADSTS${digits}${rest.replace(/^\d+/, '')}`,
          }),
        );
        expect(parsed?.aadsts).toBe(digits.length <= 9 ? Number(digits) : undefined);
      }),
      fuzzParams(200),
    );
  });
});

/** One NCRONTAB field: its text and the values it allows, built independently of the parser. */
function cronField(lo: number, hi: number) {
  const n = fc.integer({ min: lo, max: hi });
  const span = fc.tuple(n, n).map(([a, b]): [number, number] => (a <= b ? [a, b] : [b, a]));
  const range = (a: number, b: number, step = 1) => {
    const out: number[] = [];
    for (let v = a; v <= b; v += step) out.push(v);
    return out;
  };
  return fc.oneof(
    fc.constant({ text: '*', values: range(lo, hi) }),
    n.map((v) => ({ text: String(v), values: [v] })),
    span.map(([a, b]) => ({ text: `${a}-${b}`, values: range(a, b) })),
    fc.integer({ min: 1, max: hi - lo + 1 }).map((s) => ({ text: `*/${s}`, values: range(lo, hi, s) })),
    fc
      .tuple(span, fc.integer({ min: 1, max: 10 }))
      .map(([[a, b], s]) => ({ text: `${a}-${b}/${s}`, values: range(a, b, s) })),
    fc
      .uniqueArray(n, { minLength: 1, maxLength: 4 })
      .map((vs) => ({ text: vs.join(','), values: [...vs].sort((x, y) => x - y) })),
  );
}

describe('NCRONTAB against a brute-force reference', () => {
  it('nextOccurrence is the first matching second after any instant, over a year of minutes', () => {
    const YEAR_MINUTES = 366 * 24 * 60;
    fc.assert(
      fc.property(
        fc.record({
          s: cronField(0, 59),
          mi: cronField(0, 59),
          h: cronField(0, 23),
          d: cronField(1, 31),
          mo: cronField(1, 12),
          dow: cronField(0, 6),
        }),
        fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2027, 0, 1) }),
        (f, after) => {
          const expr = [f.s, f.mi, f.h, f.d, f.mo, f.dow].map((x) => x.text).join(' ');
          const sets = [f.s, f.mi, f.h, f.d, f.mo, f.dow].map((x) => new Set(x.values));
          const [sec, min, hour, day, month, dow] = sets as [
            Set<number>,
            Set<number>,
            Set<number>,
            Set<number>,
            Set<number>,
            Set<number>,
          ];
          // A day no chosen month has (31 February) is refused when parsed, naming the field.
          const MAX_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
          const possible = [...month].some((mo) => [...day].some((d) => d <= (MAX_DAYS[mo - 1] as number)));
          let schedule: ReturnType<typeof parseNcrontab>;
          try {
            schedule = parseNcrontab(expr);
          } catch (err) {
            expect(possible, String(err)).toBe(false);
            expect(String(err)).toContain('never occurs');
            return;
          }
          // Reference: walk whole minutes from the one holding `after`; in a matching minute the
          // first allowed second strictly after `after` (NCRONTAB: day-of-month AND day-of-week).
          let expected: number | undefined;
          const firstMinute = Math.floor(after / 60_000) * 60_000;
          for (let i = 0; i < YEAR_MINUTES && expected === undefined; i++) {
            const t = new Date(firstMinute + i * 60_000);
            if (!month.has(t.getUTCMonth() + 1) || !day.has(t.getUTCDate()) || !dow.has(t.getUTCDay())) {
              // Skip to the next day at once: no minute of this one can match.
              const nextDay = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate() + 1);
              i += Math.max(0, (nextDay - t.getTime()) / 60_000 - 1);
              continue;
            }
            if (!hour.has(t.getUTCHours()) || !min.has(t.getUTCMinutes())) continue;
            for (const s of [...sec].sort((a, b) => a - b)) {
              const at = t.getTime() + s * 1000;
              if (at > after && Math.floor(at / 1000) > Math.floor(after / 1000)) {
                expected = at;
                break;
              }
            }
          }
          if (expected === undefined) {
            // Nothing within a year (e.g. 31 February): the parser's answer, if any, is later.
            let got: number | undefined;
            try {
              got = nextOccurrence(schedule, after);
            } catch {
              return;
            }
            expect(got - after).toBeGreaterThan(365 * 86_400_000);
            return;
          }
          expect(new Date(nextOccurrence(schedule, after)).toISOString()).toBe(
            new Date(expected).toISOString(),
          );
        },
      ),
      fuzzParams(60),
    );
  });
});

describe('ISO-8601 durations', () => {
  it('reads every week/day/hour/minute/second combination exactly', () => {
    fc.assert(
      fc.property(
        fc
          .record(
            { w: fc.nat(60), d: fc.nat(400), h: fc.nat(100), m: fc.nat(100), s: fc.nat(100) },
            { requiredKeys: [] },
          )
          .filter((p) => Object.keys(p).length > 0),
        (p) => {
          const date = `${p.w !== undefined ? `${p.w}W` : ''}${p.d !== undefined ? `${p.d}D` : ''}`;
          const time = `${p.h !== undefined ? `${p.h}H` : ''}${p.m !== undefined ? `${p.m}M` : ''}${p.s !== undefined ? `${p.s}S` : ''}`;
          const text = `P${date}${time ? `T${time}` : ''}`;
          const ms =
            ((((p.w ?? 0) * 7 + (p.d ?? 0)) * 24 + (p.h ?? 0)) * 60 + (p.m ?? 0)) * 60_000 +
            (p.s ?? 0) * 1000;
          expect(parseDuration(text)).toBe(ms);
        },
      ),
      fuzzParams(200),
    );
  });

  it('any other text is refused or a finite non-negative duration', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, fc.stringMatching(/^P[0-9WDTHMS.]{0,12}$/)), (text) => {
        const ms = parseDuration(text);
        if (ms !== undefined) expect(Number.isFinite(ms) && ms >= 0).toBe(true);
        if (/[YM]/.test(text.split('T')[0] ?? '')) expect(ms).toBeUndefined();
      }),
      fuzzParams(300),
    );
  });
});

describe('sealing', () => {
  const key = randomBytes(32);
  it('round-trips any JSON payload until it expires', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 1, max: 10 ** 9 }), (payload, life) => {
        const sealed = seal(key, 'p', payload, NOW + life);
        expect(unseal(key, 'p', sealed, NOW)).toEqual(JSON.parse(JSON.stringify(payload)));
        expect(unseal(key, 'p', sealed, NOW + life)).toBeUndefined();
        expect(unseal(key, 'other', sealed, NOW)).toBeUndefined();
      }),
      fuzzParams(200),
    );
  });

  it('refuses any single-bit change', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), fc.nat(7), (payload, at, bit) => {
        const raw = Buffer.from(seal(key, 'p', payload, NOW + 60_000), 'base64url');
        const i = at % raw.length;
        raw[i] = (raw[i] as number) ^ (1 << bit);
        expect(unseal(key, 'p', raw.toString('base64url'), NOW)).toBeUndefined();
      }),
      fuzzParams(300),
    );
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        expect(unseal(key, 'p', text, NOW)).toBeUndefined();
      }),
      fuzzParams(200),
    );
  });
});

describe('cookies', () => {
  const token = fc.stringMatching(/^[A-Za-z0-9_.~!#$%&'*+^`|-]{1,40}$/);
  it('parseCookies reads back what serializeCookie wrote, among other cookies', () => {
    fc.assert(
      fc.property(token, fc.stringMatching(/^[A-Za-z0-9_.~!#$%&'*+^`|=/-]{0,60}$/), (name, value) => {
        const set = serializeCookie({ name, value, path: '/api', httpOnly: true, sameSite: 'Lax' });
        const pair = set.split('; ')[0] as string;
        expect(parseCookies(`other=1; ${pair}; last=2`).get(name)).toBe(name === 'other' ? '1' : value);
      }),
      fuzzParams(200),
    );
  });

  it('serializeCookie refuses or writes one header line whose first pair is the cookie', () => {
    fc.assert(
      fc.property(anyText, anyText, (name, value) => {
        let set: string;
        try {
          set = serializeCookie({ name, value, path: '/api' });
        } catch (err) {
          expect(err).toBeInstanceOf(TypeError);
          return;
        }
        expect(set).not.toMatch(/[\r\n\x00]/);
        expect(set.startsWith(`${name}=${value}; Path=/api`)).toBe(true);
      }),
      fuzzParams(300),
    );
  });

  it('parseCookies never throws and keeps the first value of a name', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyText,
          fc.array(fc.tuple(token, anyText)).map((ps) => ps.map(([n, v]) => `${n}=${v}`).join('; ')),
        ),
        (header) => {
          const cookies = parseCookies(header);
          for (const [name] of cookies) expect(name).toBe(name.trim());
        },
      ),
      fuzzParams(200),
    );
  });
});

describe('configuration', () => {
  const key = fc.constantFrom(
    'provider',
    'flow',
    'tenant',
    'clientId',
    'credential',
    'scopes',
    'expectedAccount',
    'authority',
    'redirectUri',
    'rotateAfter',
    'callers',
    'allowedScopes',
    'issuer',
    'tokenEndpoint',
    'siteUrl',
    'colour',
  );
  const value = fc.oneof(
    fc.constantFrom(
      'entra',
      'oauth2',
      'sharepoint-acs',
      'device_code',
      'common',
      'PT1H',
      'https://id.example.com',
      'http://evil.example.com',
    ),
    fc.constant({ type: 'secret', secretName: 'rt-x' }),
    fc.constant({ type: 'secret', secretName: 'ok-secret' }),
    fc.array(fc.constantFrom('User.Read', 'a b', ''), { maxLength: 3 }),
    field,
  );
  const connection = fc.dictionary(key, value, { maxKeys: 8 });
  it('any object either parses or names the connection and a field in its error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.dictionary(fc.constantFrom('support', 'Bad Id', 'x'), connection, { maxKeys: 2 }),
          fc.jsonValue(),
        ),
        (connections) => {
          try {
            parseConnections(JSON.stringify({ connections }), 'connections.json', {
              publicUrl: 'https://b.example.com',
            });
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            expect((err as Error).message).toMatch(/field "|connection "|connections/);
          }
        },
      ),
      fuzzParams(300),
    );
  });
});

describe('query parsing', () => {
  const schema = z.object({
    connection: z.string().regex(/^[a-z0-9-]{1,63}$/),
    scope: z.string().max(100).optional(),
  });
  it('any query parses or is a 400 invalid_request naming a parameter', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.oneof(fc.constantFrom('connection', 'scope'), anyText), anyText), {
          maxLength: 6,
        }),
        (pairs) => {
          const query = new URLSearchParams(pairs);
          try {
            const q = parseQuery(query, schema);
            // First value wins, as the Functions host reads it.
            expect(q.connection).toBe(query.get('connection'));
          } catch (err) {
            expect(err).toBeInstanceOf(BrokerError);
            expect((err as BrokerError).code).toBe('invalid_request');
            expect((err as Error).message).toMatch(/^Query parameter "(connection|scope|query)"/);
          }
        },
      ),
      fuzzParams(300),
    );
  });
});
