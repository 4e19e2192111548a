import type { InvocationContext, Timer } from '@azure/functions';
import { afterEach, describe, expect, it } from 'vitest';
import type { TimerRoute } from '../../src/functions/route-types.js';
import { type RunningTimers, startTimers } from '../../src/local/timers.js';
import { memoryLogger } from '../support/logs.js';

/** A hand-driven clock and timer queue: the scheduler sees only what these return. */
class FakeScheduler {
  now: number;
  private seq = 0;
  pending = new Map<number, { fn: () => void; at: number; ms: number }>();
  delays: number[] = [];

  constructor(start: string) {
    this.now = Date.parse(start);
  }

  setTimer = (fn: () => void, ms: number): number => {
    const id = ++this.seq;
    this.delays.push(ms);
    this.pending.set(id, { fn, at: this.now + ms, ms });
    return id;
  };

  clearTimer = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };

  /** Fires due timers in order up to `iso`, letting promise chains settle between them. */
  async advanceTo(iso: string): Promise<void> {
    const target = Date.parse(iso);
    for (;;) {
      const next = [...this.pending.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (!next || next[1].at > target) break;
      this.pending.delete(next[0]);
      this.now = Math.max(this.now, next[1].at);
      next[1].fn();
      await settle();
    }
    this.now = target;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

const iso = (ms: number) => new Date(ms).toISOString();

let running: RunningTimers | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

describe('startTimers', () => {
  it('fires at the computed occurrences with a Timer and an InvocationContext', async () => {
    const clock = new FakeScheduler('2026-03-10T10:02:30.000Z');
    const calls: { at: string; timer: Timer; context: InvocationContext }[] = [];
    const route: TimerRoute = {
      name: 'rotate',
      schedule: '0 */5 * * * *',
      handler: async (timer, context) => {
        calls.push({ at: iso(clock.now), timer, context });
      },
    };
    const { logger } = memoryLogger();
    running = startTimers([route], {
      now: () => clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
      logger,
    });

    expect(running.nextRuns()).toEqual({ rotate: Date.parse('2026-03-10T10:05:00Z') });
    expect(clock.delays).toEqual([150_000]);

    await clock.advanceTo('2026-03-10T10:12:00Z');
    expect(calls.map((c) => c.at)).toEqual(['2026-03-10T10:05:00.000Z', '2026-03-10T10:10:00.000Z']);
    const [first, second] = calls;
    expect(first?.timer.isPastDue).toBe(false);
    expect(first?.timer.scheduleStatus.last).toBe('0001-01-01T00:00:00.000Z');
    expect(first?.timer.scheduleStatus.next).toBe('2026-03-10T10:10:00.000Z');
    expect(first?.timer.scheduleStatus.lastUpdated).toBe('2026-03-10T10:05:00.000Z');
    expect(second?.timer.scheduleStatus.last).toBe('2026-03-10T10:05:00.000Z');
    expect(first?.context.functionName).toBe('rotate');
    expect(first?.context.invocationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(second?.context.invocationId).not.toBe(first?.context.invocationId);
    expect(running.nextRuns()).toEqual({ rotate: Date.parse('2026-03-10T10:15:00Z') });
  });

  it('routes context logging into the host logger', async () => {
    const clock = new FakeScheduler('2026-03-10T10:00:00.000Z');
    const { lines, logger } = memoryLogger();
    running = startTimers(
      [
        {
          name: 'chatty',
          schedule: '*/10 * * * * *',
          handler: async (_timer, context) => {
            context.warn('careful', 42);
          },
        },
      ],
      { now: () => clock.now, setTimer: clock.setTimer, clearTimer: clock.clearTimer, logger },
    );
    await clock.advanceTo('2026-03-10T10:00:10Z');
    expect(lines).toContainEqual({
      level: 'warn',
      event: 'function.log',
      fields: expect.objectContaining({ function: 'chatty', message: 'careful 42' }),
    });
  });

  it('caps long waits below the setTimeout limit and re-arms until due', async () => {
    const clock = new FakeScheduler('2026-01-01T00:00:00.000Z');
    let fired = 0;
    running = startTimers(
      [{ name: 'yearly', schedule: '0 0 0 1 Jan *', handler: async () => void fired++ }],
      {
        now: () => clock.now,
        setTimer: clock.setTimer,
        clearTimer: clock.clearTimer,
        logger: memoryLogger().logger,
      },
    );
    expect(clock.delays[0]).toBe(2 ** 31 - 1);
    await clock.advanceTo('2026-12-31T23:59:59Z');
    expect(fired).toBe(0);
    expect(clock.delays.length).toBeGreaterThan(10);
    expect(clock.delays.every((d) => d <= 2 ** 31 - 1)).toBe(true);
    await clock.advanceTo('2027-01-01T00:00:00Z');
    expect(fired).toBe(1);
  });

  it('never overlaps a run with itself: a due time during a run is skipped and logged', async () => {
    const clock = new FakeScheduler('2026-03-10T10:00:00.000Z');
    const { lines, logger } = memoryLogger();
    let release: () => void = () => {};
    let started = 0;
    running = startTimers(
      [
        {
          name: 'slow',
          schedule: '0 * * * * *',
          handler: () => {
            started++;
            return new Promise<void>((resolve) => {
              release = resolve;
            });
          },
        },
      ],
      { now: () => clock.now, setTimer: clock.setTimer, clearTimer: clock.clearTimer, logger },
    );
    await clock.advanceTo('2026-03-10T10:01:00Z');
    expect(started).toBe(1);
    await clock.advanceTo('2026-03-10T10:03:00Z');
    expect(started).toBe(1);
    expect(lines.filter((l) => l.event === 'timer.skipped')).toHaveLength(2);
    expect(lines.find((l) => l.event === 'timer.skipped')?.level).toBe('warn');

    release();
    await settle();
    await clock.advanceTo('2026-03-10T10:04:00Z');
    expect(started).toBe(2);
    release();
  });

  it('logs a failing run by name and message and keeps the schedule going', async () => {
    const clock = new FakeScheduler('2026-03-10T10:00:00.000Z');
    const { lines, logger } = memoryLogger();
    let calls = 0;
    let otherCalls = 0;
    running = startTimers(
      [
        {
          name: 'flaky',
          schedule: '0 * * * * *',
          handler: async () => {
            calls++;
            throw new TypeError('store unreachable');
          },
        },
        {
          name: 'sync-thrower',
          schedule: '30 * * * * *',
          // Not async: a synchronous throw must be contained too.
          handler: () => {
            throw new Error('boom');
          },
        },
        { name: 'healthy', schedule: '0 * * * * *', handler: async () => void otherCalls++ },
      ],
      { now: () => clock.now, setTimer: clock.setTimer, clearTimer: clock.clearTimer, logger },
    );
    await clock.advanceTo('2026-03-10T10:03:00Z');
    expect(calls).toBe(3);
    expect(otherCalls).toBe(3);
    const failures = lines.filter((l) => l.event === 'timer.failed');
    expect(failures).toHaveLength(6);
    expect(failures.find((l) => l.fields?.timer === 'flaky')).toMatchObject({
      level: 'error',
      fields: { timer: 'flaky', error: 'TypeError', message: 'store unreachable' },
    });
    expect(failures.some((l) => l.fields?.timer === 'sync-thrower' && l.fields.message === 'boom')).toBe(
      true,
    );
    expect(JSON.stringify(failures)).not.toContain('stack');
  });

  it('marks a run that fires late as past due and drops the missed occurrences', async () => {
    const clock = new FakeScheduler('2026-03-10T10:00:30.000Z');
    const timers: Timer[] = [];
    const pending: (() => void)[] = [];
    running = startTimers(
      [{ name: 'late', schedule: '0 * * * * *', handler: async (timer) => void timers.push(timer) }],
      {
        now: () => clock.now,
        // Holds the callback so the test can fire it long after its time, as after a sleep.
        setTimer: (fn) => pending.push(fn),
        clearTimer: () => {},
        logger: memoryLogger().logger,
      },
    );
    clock.now = Date.parse('2026-03-10T10:05:10Z');
    pending.shift()?.();
    await settle();
    expect(timers).toHaveLength(1);
    expect(timers[0]?.isPastDue).toBe(true);
    expect(running.nextRuns()).toEqual({ late: Date.parse('2026-03-10T10:06:00Z') });
  });

  it('stop() cancels pending timers and waits for running handlers', async () => {
    const clock = new FakeScheduler('2026-03-10T10:00:00.000Z');
    let release: () => void = () => {};
    let finished = false;
    const timers = startTimers(
      [
        {
          name: 'long',
          schedule: '0 * * * * *',
          handler: async () => {
            await new Promise<void>((resolve) => {
              release = resolve;
            });
            finished = true;
          },
        },
      ],
      {
        now: () => clock.now,
        setTimer: clock.setTimer,
        clearTimer: clock.clearTimer,
        logger: memoryLogger().logger,
      },
    );
    await clock.advanceTo('2026-03-10T10:01:00Z');
    let stopped = false;
    const stopping = timers.stop().then(() => {
      stopped = true;
    });
    await settle();
    expect(stopped).toBe(false);
    expect(clock.pending.size).toBe(0);
    expect(timers.nextRuns()).toEqual({});

    release();
    await stopping;
    expect(finished).toBe(true);
  });

  it('refuses an invalid schedule at start, naming the timer', () => {
    expect(() =>
      startTimers([{ name: 'rotate', schedule: '0 */5 * * *', handler: async () => {} }], {
        logger: memoryLogger().logger,
      }),
    ).toThrow(/timer "rotate".*expected 6 fields/);
  });

  it('runs on real timers by default', async () => {
    let fired = 0;
    running = startTimers(
      [{ name: 'every-second', schedule: '* * * * * *', handler: async () => void fired++ }],
      {
        logger: memoryLogger().logger,
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(fired).toBeGreaterThanOrEqual(1);
  });
});
