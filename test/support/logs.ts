import { createLogger, type LogFields, type Logger, type LogLevel } from '../../src/lib/logger.js';

/** One call of a `memoryLogger`: the level, the event and the fields object as passed. */
export interface LoggedEvent {
  level: LogLevel;
  event: string;
  fields?: LogFields;
}

/** A `Logger` that keeps every call (every level) in `lines`, fields as objects. */
export function memoryLogger(): { lines: LoggedEvent[]; logger: Logger } {
  const lines: LoggedEvent[] = [];
  const log = (level: LogLevel) => (event: string, fields?: LogFields) => {
    lines.push({ level, event, fields });
  };
  return {
    lines,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
  };
}

/** A line the broker's logger wrote, parsed: `level`, `event`, then the fields flat. */
export interface LogLine {
  level: string;
  event: string;
  [field: string]: unknown;
}

/**
 * The broker's own JSON-lines logger (`createLogger`) writing into memory: `lines` holds the text
 * exactly as it would reach the console (to search for leaked secrets), `parsed()` the objects.
 */
export function lineLogger(minLevel: LogLevel = 'debug') {
  const lines: string[] = [];
  const logger = createLogger((_level, line) => lines.push(line), minLevel);
  const parsed = (): LogLine[] => lines.map((line) => JSON.parse(line) as LogLine);
  return { logger, lines, parsed, events: (event: string) => parsed().filter((l) => l.event === event) };
}

/** A logger that drops everything. */
export const silentLogger = (): Logger => createLogger(() => {});
