import { describe, expect, it } from 'vitest';
import { pkceChallenge, pkcePair } from '../../src/lib/crypto/pkce.js';
import { newSealKey, seal, unseal } from '../../src/lib/crypto/seal.js';
import { randomToken, safeEqual } from '../../src/lib/crypto/tokens.js';

const T0 = Date.UTC(2026, 0, 1);

describe('seal', () => {
  const key = newSealKey();
  const payload = { state: 'abc', verifier: 'v'.repeat(43), connection: 'support-mailbox', n: 1 };

  it('round-trips a payload as a URL- and cookie-safe string', () => {
    const sealed = seal(key, 'consent', payload, T0 + 600_000);
    expect(sealed).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('support-mailbox');
    expect(unseal(key, 'consent', sealed, T0)).toEqual(payload);
    expect(unseal<string>(key, 'consent', seal(key, 'consent', 'plain', T0 + 1), T0)).toBe('plain');
    expect(newSealKey()).toHaveLength(32);
  });

  it('uses a fresh IV per seal', () => {
    expect(seal(key, 'consent', payload, T0 + 1000)).not.toBe(seal(key, 'consent', payload, T0 + 1000));
  });

  it('refuses a tampered value at every position', () => {
    const sealed = seal(key, 'consent', payload, T0 + 600_000);
    const raw = Buffer.from(sealed, 'base64url');
    for (let i = 0; i < raw.length; i++) {
      const copy = Buffer.from(raw);
      copy[i] = copy[i]! ^ 0x01;
      expect(unseal(key, 'consent', copy.toString('base64url'), T0)).toBeUndefined();
    }
    expect(unseal(key, 'consent', raw.subarray(0, raw.length - 1).toString('base64url'), T0)).toBeUndefined();
    expect(unseal(key, 'consent', `${sealed}AA`, T0)).toBeUndefined();
  });

  it('refuses malformed input without throwing', () => {
    for (const bad of ['', 'a', '!!!!', 'not base64 at all', 'A'.repeat(100), 'A'.repeat(20_000), '%3D']) {
      expect(unseal(key, 'consent', bad, T0)).toBeUndefined();
    }
    expect(unseal(key, 'consent', undefined as unknown as string, T0)).toBeUndefined();
  });

  it('binds the purpose', () => {
    const sealed = seal(key, 'consent', payload, T0 + 600_000);
    expect(unseal(key, 'device-poll', sealed, T0)).toBeUndefined();
    expect(unseal(key, 'Consent', sealed, T0)).toBeUndefined();
  });

  it('expires at the given time, judged by the injected clock', () => {
    const sealed = seal(key, 'device-poll', payload, T0 + 1000);
    expect(unseal(key, 'device-poll', sealed, T0 + 999)).toEqual(payload);
    expect(unseal(key, 'device-poll', sealed, T0 + 1000)).toBeUndefined();
    expect(unseal(key, 'device-poll', sealed, T0 + 86_400_000)).toBeUndefined();
  });

  it('refuses a value sealed with another key', () => {
    const sealed = seal(key, 'consent', payload, T0 + 600_000);
    expect(unseal(newSealKey(), 'consent', sealed, T0)).toBeUndefined();
  });

  it('throws on programming errors: bad key, empty purpose, bad expiry', () => {
    expect(() => seal(Buffer.alloc(16), 'consent', payload, T0)).toThrow(/32 bytes/);
    expect(() => seal(key, '', payload, T0)).toThrow(/purpose/);
    expect(() => seal(key, 'consent', payload, Number.NaN)).toThrow(/expiry/);
    expect(() => unseal(Buffer.alloc(16), 'consent', 'x', T0)).toThrow(/32 bytes/);
  });
});

describe('pkce', () => {
  it('computes the RFC 7636 appendix B challenge', () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
  });

  it('makes random S256 pairs with verifiers from the unreserved set', () => {
    const a = pkcePair();
    const b = pkcePair();
    expect(a.verifier).not.toBe(b.verifier);
    expect(a.verifier).toMatch(/^[A-Za-z0-9\-._~]{43,128}$/);
    expect(a.challenge).toBe(pkceChallenge(a.verifier));
    expect(a.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('makes base64url random tokens', () => {
    expect(randomToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomToken(48)).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(randomToken()).not.toBe(randomToken());
    expect(() => randomToken(0)).toThrow();
  });

  it('compares strings of any lengths', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
    expect(safeEqual('', 'a')).toBe(false);
  });
});
