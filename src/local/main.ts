#!/usr/bin/env node
import { ConfigError } from '../lib/errors.js';
import { runLocal } from './run.js';

/** `npm start`: the embedded host with the settings of the environment. */
async function main(): Promise<void> {
  const local = await runLocal({ print: (line) => console.log(line) });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping (waiting for running requests and timers)`);
    local.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(
    err instanceof ConfigError
      ? err.message
      : `Failed to start: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(1);
});
