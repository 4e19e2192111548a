import type { Caller } from '../auth/caller-verifier.js';
import type { Clock } from '../clock.js';

export interface CallerUse {
  name: string;
  /** ISO time of this instance's last vend to it. */
  at: string;
}

/**
 * Which callers used each connection last, as this instance saw them (another instance's callers
 * show on its own status page). Bounded: one entry per configured caller and the function key.
 */
export class CallerActivity {
  private readonly byConnection = new Map<string, Map<string, number>>();

  constructor(private readonly clock: Clock) {}

  record(connectionId: string, caller: Caller): void {
    let uses = this.byConnection.get(connectionId);
    if (!uses) {
      uses = new Map();
      this.byConnection.set(connectionId, uses);
    }
    uses.set(caller.name, this.clock.now());
  }

  /** Newest first. */
  of(connectionId: string): CallerUse[] {
    const uses = this.byConnection.get(connectionId);
    if (!uses) return [];
    return [...uses]
      .sort((a, b) => b[1] - a[1])
      .map(([name, at]) => ({ name, at: new Date(at).toISOString() }));
  }
}
