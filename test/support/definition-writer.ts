/**
 * A child process for the cross-process test of the file definition store: opens the store on
 * argv[2], waits for a line on stdin (so every writer starts together), then `rounds` times reads
 * connection `shared` and replaces it with `If-Match` on the ETag it read. Prints one JSON line:
 * the ETags it replaced (each must be replaced by one writer only).
 */
import { FileDefinitionStore } from '../../src/lib/definitions/file-definition-store.js';
import { BrokerError } from '../../src/lib/errors.js';

const [dir, roundsArg, who] = process.argv.slice(2);
const store = await FileDefinitionStore.open(dir!, Date);
await new Promise((resolve) => process.stdin.once('data', resolve));
const replaced: string[] = [];
let refused = 0;
for (let i = 0; i < Number(roundsArg); i++) {
  const current = await store.get('connection', 'shared');
  try {
    await store.put(
      'connection',
      'shared',
      { template: 'mail', displayName: `${who}-${i}` },
      { name: who! },
      {
        ifMatch: current!.etag,
      },
    );
    replaced.push(current!.etag);
  } catch (err) {
    if (!(err instanceof BrokerError) || err.code !== 'precondition_failed') throw err;
    refused++;
  }
}
process.stdout.write(`${JSON.stringify({ replaced, refused })}\n`);
