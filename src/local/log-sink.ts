/**
 * The embedded host's log sink: lines are queued and written once per turn of the event loop, so a
 * request pays for a string in an array instead of a synchronous write to stdout (console.log on
 * Linux, to a pipe or a file). Only for the embedded host: under Azure's Functions worker every
 * console call becomes one `traces` record whose `message` the alert rules parse as one JSON object,
 * so there each line must stay its own console.log (the default sink of `createLogger`).
 */
import type { LogLevel, LogSink } from '../lib/logger.js';

export interface StdioSink {
  sink: LogSink;
  /** Writes every queued line now. Called on close and on process exit so no line is lost. */
  flush(): void;
  /** Flushes and stops listening for the process exit. */
  close(): void;
}

export interface StdioSinkOptions {
  /** Defaults to process.stdout (debug, info) and process.stderr (warn, error), as console.log/warn/error. */
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

/**
 * A write to a pipe is atomic only up to PIPE_BUF (4096 bytes on Linux): above it a reader that merges
 * stdout and stderr, as a supervisor or a test does, could see a line of one cut by a line of the other.
 */
const MAX_WRITE_BYTES = 4096;

interface Chunk {
  stream: NodeJS.WritableStream;
  text: string;
  bytes: number;
}

export function stdioSink(options: StdioSinkOptions = {}): StdioSink {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  // Consecutive lines for the same stream are joined; a change of stream starts a new chunk, so the
  // order of lines across stdout and stderr is the order they were logged in.
  const chunks: Chunk[] = [];
  let scheduled = false;
  let blocked: NodeJS.WritableStream | undefined;

  const write = () => {
    while (chunks.length > 0) {
      const chunk = chunks[0]!;
      // Node buffers what a slow stream has not taken (e.g. a pipe on macOS); wait for it to drain
      // rather than pile up there as well as here.
      if (blocked === chunk.stream) return;
      chunks.shift();
      if (!chunk.stream.write(chunk.text)) {
        blocked = chunk.stream;
        chunk.stream.once('drain', () => {
          blocked = undefined;
          write();
        });
        return;
      }
    }
  };

  const flushSoon = () => {
    scheduled = false;
    write();
  };

  const sink: LogSink = (level: LogLevel, line: string) => {
    const stream = level === 'warn' || level === 'error' ? err : out;
    const last = chunks[chunks.length - 1];
    const text = `${line}\n`;
    const bytes = Buffer.byteLength(text);
    if (last && last.stream === stream && last.bytes + bytes <= MAX_WRITE_BYTES) {
      last.text += text;
      last.bytes += bytes;
    } else {
      chunks.push({ stream, text, bytes });
    }
    if (!scheduled) {
      scheduled = true;
      // After this turn's I/O callbacks: every request answered in this turn shares one write.
      setImmediate(flushSoon);
    }
  };

  const flush = () => {
    // At exit no 'drain' will come; a write still queues in Node, which on Linux writes pipes,
    // files and terminals synchronously.
    blocked = undefined;
    write();
  };
  process.on('exit', flush);

  return {
    sink,
    flush,
    close() {
      flush();
      process.off('exit', flush);
    },
  };
}
