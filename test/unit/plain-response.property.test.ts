import type { HttpResponseInit } from '@azure/functions';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HttpResponse } from '../../src/local/azure-functions.js';
import { plainResponse } from '../../src/local/plain-response.js';
import { fuzzParams } from '../support/fuzz.js';

type Outcome = { threw: true } | { threw: false; status: number; headers: [string, string][]; body: string };

/** What the embedded host wrote before plainResponse: the class, then its bytes. */
async function throughClass(init: HttpResponseInit): Promise<Outcome> {
  try {
    const response = new HttpResponse(init);
    const body = Buffer.from(await response.arrayBuffer()).toString('base64');
    return { threw: false, status: response.status, headers: [...response.headers], body };
  } catch {
    return { threw: true };
  }
}

function throughPlain(init: HttpResponseInit): Outcome | undefined {
  try {
    const plain = plainResponse(init);
    if (!plain) return undefined;
    return {
      threw: false,
      status: plain.status,
      headers: plain.headers,
      body: plain.body.toString('base64'),
    };
  } catch {
    return { threw: true };
  }
}

const tokenAnswer: HttpResponseInit = {
  status: 200,
  headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
  jsonBody: {
    access_token: 'eyJ0eXAiOiJKV1QifQ.e30.c2ln',
    token_type: 'Bearer',
    expires_in: 3599,
    expires_on: 1_900_000_000,
    scope: 'https://graph.microsoft.com/User.Read',
    xoauth2: 'dXNlcj1h',
  },
};

describe('plainResponse', () => {
  it('answers the token route and a problem exactly as HttpResponse does', async () => {
    const problem: HttpResponseInit = {
      status: 503,
      headers: {
        'Retry-After': '5',
        'Cache-Control': 'no-store',
        'Content-Type': 'application/problem+json',
      },
      body: JSON.stringify({
        type: 'about:blank',
        title: 'Ünavailable',
        status: 503,
        code: 'upstream_unavailable',
      }),
    };
    for (const init of [
      tokenAnswer,
      problem,
      { status: 302, headers: { Location: '/x' } },
      { body: 'é\ud800' },
    ]) {
      const plain = throughPlain(init);
      expect(plain).toBeDefined();
      expect(plain).toEqual(await throughClass(init));
    }
  });

  it('leaves what it does not mirror to HttpResponse', () => {
    const declined: HttpResponseInit[] = [
      { status: 204, jsonBody: { a: 1 } },
      { status: 200, cookies: [{ name: 'a', value: 'b' }], jsonBody: {} },
      { headers: { 'Set-Cookie': 'a=b' }, body: 'x' },
      { headers: { 'x-a': '1', 'X-A': '2' }, body: 'x' },
      { headers: { 'x-a': ' padded ' }, body: 'x' },
      { headers: new Headers({ 'x-a': '1' }), body: 'x' },
      { body: new Uint8Array([1, 2]) },
      { jsonBody: () => 1 },
    ];
    for (const init of declined) expect(plainResponse(init)).toBeUndefined();
  });

  it('throws where HttpResponse throws (a body JSON cannot hold)', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(throughPlain({ jsonBody: cyclic })).toEqual({ threw: true });
    expect(await throughClass({ jsonBody: cyclic })).toEqual({ threw: true });
  });

  it('whatever it answers, HttpResponse answers the same', async () => {
    const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
    const name = fc.oneof(
      fc.constantFrom(
        'Cache-Control',
        'cache-control',
        'Content-Type',
        'content-type',
        'Location',
        'Set-Cookie',
      ),
      token,
      fc.string({ maxLength: 8 }),
    );
    const value = fc.oneof(
      fc.constantFrom(
        'no-store',
        'application/problem+json',
        'text/html; charset=utf-8',
        '',
        ' x',
        'a\tb',
        'a\r\nb',
      ),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.string({
        unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)),
        maxLength: 20,
      }),
      fc.integer(),
    );
    const init = fc.record(
      {
        status: fc.oneof(
          fc.constantFrom(200, 201, 204, 205, 302, 304, 400, 401, 404, 500, 503, 599, 600, 199, 100),
          fc.integer({ min: -10, max: 700 }),
          fc.double(),
        ),
        headers: fc.oneof(
          fc.dictionary(name, value, { maxKeys: 4 }),
          fc.dictionary(fc.constantFrom('Cache-Control', 'Pragma', 'Content-Type', 'X-Id'), token, {
            maxKeys: 3,
          }),
        ),
        jsonBody: fc.oneof(fc.jsonValue(), fc.constant(null)),
        body: fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.constant(null)),
        cookies: fc.oneof(
          { arbitrary: fc.constant([]), weight: 4 },
          fc.constant([{ name: 'a', value: 'b' }]),
        ),
      },
      { requiredKeys: [] },
    );
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(init, async (i) => {
        const r = i as HttpResponseInit;
        const plain = throughPlain(r);
        if (plain === undefined) return;
        answered++;
        expect(plain).toEqual(await throughClass(r));
      }),
      fuzzParams(500),
    );
    // Not only declines: a good share of the cases were answered and compared. About 26% are
    // (113-145 of 500 over 16 seeds); 10% leaves eight standard deviations, where 100 left three
    // and failed a CI run at 99.
    expect(answered).toBeGreaterThan(50);
  });
});
