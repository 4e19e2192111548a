/** Time as epoch milliseconds; injected so 90-day and 6-month expiries are tested without waiting. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * Elapsed time that never jumps with the wall clock, for what a real server times: a blob lease
 * expires in Azure's time, not in a test's manual one, so the lease lock measures with this.
 */
export const monotonicClock: Clock = { now: () => performance.now() };

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private current: number = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
  set(ms: number): void {
    this.current = ms;
  }
}
