import type { Caller } from '../auth/caller-verifier.js';
import type { Clock } from '../clock.js';

export interface CallerUse {
  name: string;
  /** ISO time of this instance's last vend to it. */
  at: string;
}

/** One caller's last use: a connection used by one caller only (the usual case) holds just this. */
interface LastUse {
  name: string;
  at: number;
}

/**
 * Which callers used each connection last, as this instance saw them (another instance's callers
 * show on its own status page). Bounded: one entry per configured caller and the function key.
 */
export class CallerActivity {
  /** A single caller as one record, several as a map (a map per connection is ~0.3 KB at 100,000). */
  private readonly byConnection = new Map<string, LastUse | Map<string, number>>();

  constructor(private readonly clock: Clock) {}

  record(connectionId: string, caller: Caller): void {
    const at = this.clock.now();
    const uses = this.byConnection.get(connectionId);
    if (uses instanceof Map) uses.set(caller.name, at);
    else if (uses?.name === caller.name) uses.at = at;
    else if (!uses) this.byConnection.set(connectionId, { name: caller.name, at });
    else
      this.byConnection.set(
        connectionId,
        new Map([
          [uses.name, uses.at],
          [caller.name, at],
        ]),
      );
  }

  /** The connection was deleted: a later one with its id starts with no callers. */
  forget(connectionId: string): void {
    this.byConnection.delete(connectionId);
  }

  /** Newest first. */
  of(connectionId: string): CallerUse[] {
    const uses = this.byConnection.get(connectionId);
    if (!uses) return [];
    if (!(uses instanceof Map)) return [{ name: uses.name, at: new Date(uses.at).toISOString() }];
    return [...uses]
      .sort((a, b) => b[1] - a[1])
      .map(([name, at]) => ({ name, at: new Date(at).toISOString() }));
  }
}
