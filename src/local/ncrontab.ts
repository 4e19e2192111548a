/**
 * NCRONTAB, the six-field cron dialect of Azure Functions timer triggers
 * (`{second} {minute} {hour} {day} {month} {day-of-week}`, UTC), so the embedded host fires the
 * rotation timer on the same instants Azure would.
 *
 * Follows NCrontab (atifaziz/NCrontab, which the Functions host uses) where it matters:
 * - day-of-month and day-of-week are ANDed: a date must match both fields. NCrontab finds the next
 *   date allowed by day/month and then rejects it unless its weekday is in the weekday field; it
 *   does not implement Vixie cron's "either field matches" rule. So `0 0 0 13 * Fri` fires only
 *   on Friday the 13th.
 * - a single value with a step (`5/15`) means "from 5 to the field's maximum, every 15th".
 * - names match by prefix, case-insensitively (`Mon`, `Monday`, `jan`); unlike NCrontab we ask for
 *   at least three letters, so `T` or `Ju` are refused instead of silently meaning the first match.
 * Beyond NCrontab, weekday 7 is also accepted as Sunday, as in most crons.
 */

export interface Schedule {
  /** The expression as given, for logs and errors. */
  readonly source: string;
  /** Allowed values per field, ascending, without duplicates. */
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly days: readonly number[];
  readonly months: readonly number[];
  /** 0 = Sunday … 6 = Saturday. */
  readonly daysOfWeek: readonly number[];
}

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const MONTH_NAMES = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
const WEEKDAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

const FIELDS: readonly FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES },
  // 7 is parsed as its own value and folded onto 0 afterwards, so `5-7` stays an ascending range.
  { name: 'day-of-week', min: 0, max: 7, names: WEEKDAY_NAMES },
];

/** Longest month length per month, leap years included: decides whether a day can ever occur. */
const MAX_DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * How far `nextOccurrence` looks. Long enough for the rarest valid schedules (a leap day that must
 * also be a given weekday recurs up to 28 years apart, 40 around 2100); cheap because the search
 * walks only the allowed months and days.
 */
const SEARCH_YEARS = 41;

export function parseNcrontab(expr: string): Schedule {
  const tokens = expr.trim().split(/\s+/).filter(Boolean);
  if (tokens.length !== 6) {
    throw new Error(
      `Invalid NCRONTAB expression "${expr}": expected 6 fields ` +
        `({second} {minute} {hour} {day} {month} {day-of-week}), got ${tokens.length}`,
    );
  }
  const [seconds, minutes, hours, days, months, weekdays] = tokens.map((token, i) =>
    parseField(expr, token, FIELDS[i]!),
  ) as [number[], number[], number[], number[], number[], number[]];

  const daysOfWeek = [...new Set(weekdays.map((d) => d % 7))].sort((a, b) => a - b);

  // NCrontab would search forever for `0 0 0 30 2 *`; refuse it here, where the field can be named.
  const possible = months.some((m) => days.some((d) => d <= MAX_DAYS_IN_MONTH[m - 1]!));
  if (!possible) {
    throw new Error(
      `Invalid NCRONTAB expression "${expr}": day field "${tokens[3]}" never occurs in month field "${tokens[4]}"`,
    );
  }

  return { source: expr, seconds, minutes, hours, days, months, daysOfWeek };
}

function parseField(expr: string, token: string, spec: FieldSpec): number[] {
  const fail = (reason: string): never => {
    throw new Error(`Invalid NCRONTAB expression "${expr}": ${spec.name} field "${token}": ${reason}`);
  };
  const values = new Set<number>();
  for (const part of token.split(',')) {
    if (part === '') fail('empty list element');
    const slash = part.indexOf('/');
    const base = slash === -1 ? part : part.slice(0, slash);
    let step = 1;
    if (slash !== -1) {
      const stepText = part.slice(slash + 1);
      if (!/^\d+$/.test(stepText)) fail(`step "${stepText}" is not a whole number`);
      step = Number(stepText);
      if (step < 1) fail('step must be at least 1');
    }

    let first: number;
    let last: number;
    if (base === '*') {
      first = spec.min;
      // `*` in the weekday field means 0-6; letting it reach 7 would only duplicate Sunday.
      last = spec.name === 'day-of-week' ? 6 : spec.max;
    } else if (base.includes('-')) {
      const [a, b, ...rest] = base.split('-');
      if (rest.length > 0 || a === undefined || b === undefined) return fail(`malformed range "${base}"`);
      first = parseValue(a, spec, fail);
      last = parseValue(b, spec, fail);
      // `Fri-Sun`: Sunday parses as 0, but at the end of a range it can only mean 7.
      if (spec.name === 'day-of-week' && last === 0 && first > 0) last = 7;
      if (first > last) fail(`range "${base}" runs backwards`);
    } else {
      first = parseValue(base, spec, fail);
      // NCrontab: `5/15` runs from 5 to the field's maximum.
      last = slash === -1 ? first : spec.max;
    }

    for (let v = first; v <= last; v += step) values.add(v);
  }
  return [...values].sort((a, b) => a - b);
}

function parseValue(text: string, spec: FieldSpec, fail: (reason: string) => never): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < spec.min || n > spec.max) fail(`${n} is outside ${spec.min}-${spec.max}`);
    return n;
  }
  if (spec.names && /^[a-z]{3,}$/i.test(text)) {
    const lower = text.toLowerCase();
    const index = spec.names.findIndex((name) => name.startsWith(lower));
    if (index !== -1) return index + spec.min;
  }
  return fail(
    spec.names
      ? `"${text}" is neither a number in ${spec.min}-${spec.max} nor a name (${spec.names.map((n) => n.slice(0, 3)).join(', ')})`
      : `"${text}" is not a number in ${spec.min}-${spec.max}`,
  );
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * The first instant of the schedule strictly after `afterMs` (epoch ms, UTC). Occurrences fall on
 * whole seconds. Walks the allowed values field by field, from the year down to the second, so
 * a call costs a handful of steps per level rather than one per second.
 */
export function nextOccurrence(schedule: Schedule, afterMs: number): number {
  if (!Number.isFinite(afterMs)) throw new Error('nextOccurrence: afterMs must be a finite number');
  const start = new Date(Math.floor(afterMs / 1000) * 1000 + 1000);
  const y0 = start.getUTCFullYear();
  const mo0 = start.getUTCMonth() + 1;
  const d0 = start.getUTCDate();
  const h0 = start.getUTCHours();
  const mi0 = start.getUTCMinutes();
  const s0 = start.getUTCSeconds();
  const weekdays = new Set(schedule.daysOfWeek);

  for (let year = y0; year <= y0 + SEARCH_YEARS; year++) {
    for (const month of schedule.months) {
      if (year === y0 && month < mo0) continue;
      const sameMonth = year === y0 && month === mo0;
      const monthLength = daysInMonth(year, month);
      for (const day of schedule.days) {
        if (day > monthLength) break;
        if (sameMonth && day < d0) continue;
        if (!weekdays.has(new Date(Date.UTC(year, month - 1, day)).getUTCDay())) continue;
        const sameDay = sameMonth && day === d0;
        for (const hour of schedule.hours) {
          if (sameDay && hour < h0) continue;
          const sameHour = sameDay && hour === h0;
          for (const minute of schedule.minutes) {
            if (sameHour && minute < mi0) continue;
            const sameMinute = sameHour && minute === mi0;
            for (const second of schedule.seconds) {
              if (sameMinute && second < s0) continue;
              return Date.UTC(year, month - 1, day, hour, minute, second);
            }
          }
        }
      }
    }
  }
  throw new Error(
    `NCRONTAB expression "${schedule.source}" has no occurrence within ${SEARCH_YEARS} years of ${start.toISOString()}`,
  );
}
