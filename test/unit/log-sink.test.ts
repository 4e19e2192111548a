import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/logger.js';
import { stdioSink } from '../../src/local/log-sink.js';
import { ROOT } from '../support/process.js';

/** Every write, in order, on whichever of the two streams it went to. */
function recorder(highWaterMark = 1 << 20) {
  const writes: { stream: 'out' | 'err'; text: string }[] = [];
  const make = (stream: 'out' | 'err', hold: () => boolean) => {
    const pending: (() => void)[] = [];
    const w = new Writable({
      highWaterMark,
      write(chunk: Buffer, _enc, done) {
        writes.push({ stream, text: chunk.toString() });
        if (hold()) pending.push(done);
        else done();
      },
    });
    return {
      w,
      release: () => {
        for (const d of pending.splice(0)) d();
      },
    };
  };
  let holding = false;
  const out = make('out', () => holding);
  const err = make('err', () => false);
  return {
    writes,
    out: out.w,
    err: err.w,
    hold: (on: boolean) => {
      holding = on;
      if (!on) out.release();
    },
    lines: (stream?: 'out' | 'err') =>
      writes
        .filter((w) => stream === undefined || w.stream === stream)
        .map((w) => w.text)
        .join('')
        .split('\n')
        .filter((l) => l !== ''),
  };
}

describe('stdioSink', () => {
  it('writes a turn of lines once per stream, in the order they were logged, off the calling path', async () => {
    const rec = recorder();
    const stdio = stdioSink({ out: rec.out, err: rec.err });
    const logger = createLogger(stdio.sink);
    for (let i = 0; i < 10; i++) logger.info('local_host.request', { i });
    logger.error('local_host.handler_failed', { i: 10 });
    logger.warn('token.slow', { i: 11 });
    logger.info('token.vended', { i: 12 });
    expect(rec.writes).toEqual([]);

    await nextTurn();
    expect(rec.writes.map((w) => w.stream)).toEqual(['out', 'err', 'out']);
    const all = rec.writes.flatMap((w) => w.text.split('\n').filter(Boolean)).map((l) => JSON.parse(l).i);
    expect(all).toEqual([...Array(13).keys()]);
    expect(JSON.parse(rec.lines('out')[0]!)).toEqual({ level: 'info', event: 'local_host.request', i: 0 });
    stdio.close();
  });

  it('keeps each write within a pipe-atomic size, a longer line alone', async () => {
    const rec = recorder();
    const stdio = stdioSink({ out: rec.out, err: rec.err });
    const line = 'x'.repeat(199);
    for (let i = 0; i < 100; i++) stdio.sink('info', line);
    stdio.sink('info', 'y'.repeat(5000));
    await nextTurn();
    expect(rec.lines()).toEqual([...Array(100).fill(line), 'y'.repeat(5000)]);
    expect(rec.writes.length).toBe(6);
    for (const w of rec.writes.slice(0, -1)) expect(Buffer.byteLength(w.text)).toBeLessThanOrEqual(4096);
    stdio.close();
  });

  it('waits for a stream that pushes back, losing nothing', async () => {
    const rec = recorder(1);
    const stdio = stdioSink({ out: rec.out, err: rec.err });
    rec.hold(true);
    stdio.sink('info', 'one');
    await nextTurn();
    stdio.sink('info', 'two');
    stdio.sink('error', 'three');
    await nextTurn();
    // The stream took 'one' and said it was full: nothing more is written until it drains.
    expect(rec.lines()).toEqual(['one']);
    rec.hold(false);
    await nextTurn();
    await nextTurn();
    expect(rec.lines()).toEqual(['one', 'two', 'three']);
    stdio.close();
  });

  it('close writes what is queued at once', () => {
    const rec = recorder();
    const stdio = stdioSink({ out: rec.out, err: rec.err });
    stdio.sink('info', 'last words');
    stdio.close();
    expect(rec.lines()).toEqual(['last words']);
  });

  it('writes what is queued when the process exits', () => {
    const script = [
      "import { stdioSink } from './src/local/log-sink.ts';",
      'const s = stdioSink();',
      "s.sink('info', 'a'); s.sink('error', 'b'); s.sink('info', 'c');",
      'process.exit(0);',
    ].join('\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(child.status).toBe(0);
    expect(child.stdout).toBe('a\nc\n');
    expect(child.stderr).toBe('b\n');
  });
});
