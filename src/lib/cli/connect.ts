import { setTimeout as delay } from 'node:timers/promises';
import type { Broker } from '../broker.js';
import type { DevicePoll } from '../consent/device-service.js';
import { isBrokerError } from '../errors.js';

export interface ConnectOptions {
  /** Waits between polls; tests inject one that moves a manual clock instead of waiting. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * `broker connect ID`: the device code flow in a terminal, as the old setup scripts did it. Prints
 * the provider's instruction (URL and user code), polls at the interval (longer after `slow_down`)
 * until the person has signed in, declined, or the code expired, and stores the grant exactly as
 * `/api/start/poll` does. Returns the exit code. The device code is never printed.
 */
export async function connectCommand(
  broker: Broker,
  connectionId: string,
  out: (line: string) => void,
  options: ConnectOptions = {},
): Promise<number> {
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const { device } = broker.consent;
  const started = await device.start(connectionId);
  out(
    started.message ??
      `To sign in, use a web browser to open the page ${started.verificationUri} and enter the code ${started.userCode} to authenticate.`,
  );
  const expectedAccount = (await broker.connections.get(connectionId)).expectedAccount;
  if (expectedAccount) out(`Sign in as ${expectedAccount}; any other account is refused.`);
  out(`Waiting for the sign-in (the code expires in ${Math.round(started.expiresIn / 60)} minutes)…`);

  let attempt = started.attempt;
  let nextPollAt = started.nextPollAt;
  for (;;) {
    await sleep(Math.max(0, nextPollAt - broker.clock.now()));
    let result: DevicePoll;
    try {
      result = await device.poll(connectionId, attempt);
    } catch (err) {
      // An outage is worth waiting out until the code expires (the service then says so).
      if (!isBrokerError(err, 'upstream_unavailable')) throw err;
      nextPollAt = broker.clock.now() + Math.max(started.interval, err.retryAfter ?? 0) * 1000;
      continue;
    }
    switch (result.status) {
      case 'pending':
        attempt = result.attempt;
        nextPollAt = result.nextPollAt;
        break;
      case 'connected':
        out(
          `Connected: connection ${connectionId} is connected${result.account ? ` as ${result.account}` : ''}.`,
        );
        return 0;
      case 'declined':
      case 'expired':
        out(result.detail);
        return 1;
    }
  }
}
