import type { BrokerSource } from './adapter.js';
import type { TimerHandler } from './route-types.js';

/** Timer `rotate`: one rotation pass; its outcome is in the structured log lines. */
export const rotateHandler =
  (source: BrokerSource): TimerHandler =>
  async () => {
    const broker = await source();
    await broker.telemetry.rotationPass(() => broker.rotation.rotationPass({ jitter: true }));
  };
