/**
 * Timer triggers for the embedded local host: each TimerRoute fires on its NCRONTAB schedule, as
 * Azure's host would fire it, with a `Timer` and an `InvocationContext` of its own.
 */
import { randomUUID } from 'node:crypto';
import type { Timer } from '@azure/functions';
import type { TimerRoute } from '../functions/route-types.js';
import { createLogger } from '../lib/logger.js';
import { InvocationContext } from './azure-functions.js';
import { nextOccurrence, parseNcrontab, type Schedule } from './ncrontab.js';
import { errorFields, type HostLogger, invocationLogHandler } from './server.js';

export interface StartTimersOptions {
  now?: () => number;
  logger?: HostLogger;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface RunningTimers {
  /** Cancels every pending timer and resolves once running handlers have finished. */
  stop(): Promise<void>;
  /** Next scheduled run per timer name, epoch ms; absent once stopped or when none can be found. */
  nextRuns(): Record<string, number>;
}

/** setTimeout overflows above 2^31-1 ms (~24.8 days) and fires at once; longer waits are re-armed. */
const MAX_DELAY_MS = 2 ** 31 - 1;
/** A run later than this after its due time is reported as past due, as Azure does after downtime. */
const PAST_DUE_AFTER_MS = 1000;
/** What Azure's host reports as `last` before the first run (.NET `DateTime.MinValue`). */
const NEVER = '0001-01-01T00:00:00.000Z';

interface TimerState {
  route: TimerRoute;
  schedule: Schedule;
  next?: number;
  last?: number;
  handle?: unknown;
  running?: Promise<void>;
}

export function startTimers(timers: TimerRoute[], options: StartTimersOptions = {}): RunningTimers {
  const now = options.now ?? Date.now;
  const logger: HostLogger = options.logger ?? createLogger();
  const setTimer =
    options.setTimer ??
    ((fn: () => void, ms: number) => {
      const t = setTimeout(fn, ms);
      // The HTTP server keeps `npm start` alive; pending timers alone should not block an exit.
      t.unref();
      return t;
    });
  const clearTimer =
    options.clearTimer ?? ((handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>));

  // Parsing everything first makes a bad schedule fail startup instead of surfacing at first fire.
  const states: TimerState[] = timers.map((route) => {
    try {
      return { route, schedule: parseNcrontab(route.schedule) };
    } catch (err) {
      throw new Error(`timer "${route.name}": ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  let stopped = false;

  function scheduleAfter(state: TimerState, afterMs: number): void {
    try {
      state.next = nextOccurrence(state.schedule, afterMs);
    } catch (err) {
      state.next = undefined;
      logger.error('timer.unschedulable', { timer: state.route.name, ...errorFields(err) });
      return;
    }
    arm(state);
  }

  function arm(state: TimerState): void {
    if (stopped || state.next === undefined) return;
    const delay = Math.min(Math.max(0, state.next - now()), MAX_DELAY_MS);
    state.handle = setTimer(() => onTimer(state), delay);
  }

  function onTimer(state: TimerState): void {
    state.handle = undefined;
    const due = state.next;
    if (stopped || due === undefined) return;
    const current = now();
    if (current < due) {
      // Woke early: the wait was capped, or the timer fired ahead of the clock.
      arm(state);
      return;
    }
    // Occurrences missed while late (sleep, a long run) are dropped; the next is taken from now.
    scheduleAfter(state, Math.max(current, due));

    if (state.running) {
      logger.warn('timer.skipped', {
        timer: state.route.name,
        due: new Date(due).toISOString(),
        reason: 'previous run still going',
      });
      return;
    }
    state.running = run(state, due, current).finally(() => {
      state.running = undefined;
    });
  }

  async function run(state: TimerState, due: number, started: number): Promise<void> {
    const invocationId = randomUUID();
    const name = state.route.name;
    const timer: Timer = {
      isPastDue: started - due > PAST_DUE_AFTER_MS,
      schedule: { adjustForDST: false },
      scheduleStatus: {
        last: state.last === undefined ? NEVER : new Date(state.last).toISOString(),
        next: state.next === undefined ? NEVER : new Date(state.next).toISOString(),
        lastUpdated: new Date(started).toISOString(),
      },
    };
    state.last = due;
    const context = new InvocationContext({
      invocationId,
      functionName: name,
      logHandler: invocationLogHandler(logger, name, invocationId),
    });
    logger.info('timer.started', { timer: name, invocationId, isPastDue: timer.isPastDue });
    try {
      await state.route.handler(timer, context);
      logger.info('timer.completed', { timer: name, invocationId, durationMs: now() - started });
    } catch (err) {
      logger.error('timer.failed', {
        timer: name,
        invocationId,
        durationMs: now() - started,
        ...errorFields(err),
      });
    }
  }

  for (const state of states) scheduleAfter(state, now());

  return {
    async stop() {
      stopped = true;
      for (const state of states) {
        if (state.handle !== undefined) clearTimer(state.handle);
        state.handle = undefined;
        state.next = undefined;
      }
      await Promise.all(states.map((s) => s.running));
    },
    nextRuns() {
      const runs: Record<string, number> = {};
      for (const state of states) if (state.next !== undefined) runs[state.route.name] = state.next;
      return runs;
    },
  };
}
