import { expect } from 'vitest';
import { BrokerError } from '../../src/lib/errors.js';

/** The `BrokerError` that `fn` throws; fails the test when it throws nothing or something else. */
export function catchError(fn: () => unknown): BrokerError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BrokerError);
    return err as BrokerError;
  }
  throw new Error('expected a BrokerError');
}

/** The `BrokerError` that `promise` rejects with; fails the test when it resolves or rejects with something else. */
export async function rejection(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(BrokerError);
    return err as BrokerError;
  }
  throw new Error('expected a rejection');
}
