#!/usr/bin/env node
import { BrokerError, ConfigError } from '../lib/errors.js';
import { runCli } from './commands.js';

/** The `broker` command (package.json `bin`). Errors print their plain-words message, never a stack. */
runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof BrokerError) console.error(`broker: ${err.message}`);
    else console.error(`broker: failed (${err instanceof Error ? err.name : 'error'})`);
    process.exit(1);
  },
);
