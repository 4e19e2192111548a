import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_KEY, findLeaks, type Stack, startStack } from '../e2e/harness.js';
import { consent } from '../fakes/consent-client.js';

/**
 * clients/python's own tests (standard library only: PyPI is not needed), run with the real broker:
 * the embedded host with a connected connection, whose token the simulator's Graph-like /me accepts.
 * Skipped, with the reason, when there is no python3.
 */
const python = spawnSync('python3', ['--version']).status === 0;
if (!python) console.warn('python.test.ts skipped: no python3 on PATH.');

describe.skipIf(!python)('clients/python (python3 -m unittest)', () => {
  let stack: Stack;
  const account = 'ana@contoso.com';
  beforeAll(async () => {
    stack = await startStack();
    expect((await consent(stack.url, FUNCTION_KEY, 'support', { account })).status).toBe(200);
  });
  afterAll(() => stack?.close());

  it('passes against a scripted broker and the embedded host', async () => {
    const child = spawn('python3', ['-m', 'unittest', '-v', 'test_broker_credential'], {
      cwd: resolve('clients/python'),
      env: {
        ...process.env,
        PYTHONDONTWRITEBYTECODE: '1',
        BROKER_TEST_URL: stack.url,
        BROKER_TEST_KEY: FUNCTION_KEY,
        BROKER_TEST_CONNECTION: 'support',
        BROKER_TEST_ACCOUNT: account,
        BROKER_TEST_GRAPH_ME: `${stack.simUrl}/graph/v1.0/me`,
      },
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(output, output).toMatch(/test_token_reads_me_and_xoauth2_names_the_account .* ok/);
    expect(code, output).toBe(0);
    expect(await findLeaks(stack)).toEqual([]);
  }, 60_000);
});
