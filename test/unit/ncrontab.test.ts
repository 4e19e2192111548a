import { describe, expect, it } from 'vitest';
import { nextOccurrence, parseNcrontab } from '../../src/local/ncrontab.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

/** The next `count` occurrences after `from`, as ISO strings. */
function occurrences(expr: string, from: string, count: number): string[] {
  const schedule = parseNcrontab(expr);
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < count; i++) {
    t = nextOccurrence(schedule, t);
    out.push(iso(t));
  }
  return out;
}

describe('parseNcrontab', () => {
  it('expands wildcards, lists, ranges and steps', () => {
    const s = parseNcrontab('*/15 10-40/10 1,2,23 1-3 */4 *');
    expect(s.seconds).toEqual([0, 15, 30, 45]);
    expect(s.minutes).toEqual([10, 20, 30, 40]);
    expect(s.hours).toEqual([1, 2, 23]);
    expect(s.days).toEqual([1, 2, 3]);
    expect(s.months).toEqual([1, 5, 9]);
    expect(s.daysOfWeek).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('reads a single value with a step as running to the maximum, as NCrontab does', () => {
    expect(parseNcrontab('5/20 0 0 * * *').seconds).toEqual([5, 25, 45]);
  });

  it('accepts month and weekday names in any case, and 7 as Sunday', () => {
    const s = parseNcrontab('0 0 0 * jan,MAR-May Mon-Fri');
    expect(s.months).toEqual([1, 3, 4, 5]);
    expect(s.daysOfWeek).toEqual([1, 2, 3, 4, 5]);
    expect(parseNcrontab('0 0 0 * * 7').daysOfWeek).toEqual([0]);
    expect(parseNcrontab('0 0 0 * * 5-7').daysOfWeek).toEqual([0, 5, 6]);
    expect(parseNcrontab('0 0 0 * * Fri-Sun').daysOfWeek).toEqual([0, 5, 6]);
    expect(parseNcrontab('0 0 0 * December Sunday').months).toEqual([12]);
  });

  it('tolerates surrounding and repeated whitespace', () => {
    expect(parseNcrontab('  0   */5 * *\t* *  ').minutes).toHaveLength(12);
  });

  it.each([
    ['', /expected 6 fields/],
    ['0 */5 * * *', /expected 6 fields .*, got 5/],
    ['0 0 */5 * * * *', /expected 6 fields .*, got 7/],
    ['60 * * * * *', /second field "60": 60 is outside 0-59/],
    ['0 60 * * * *', /minute field/],
    ['0 0 24 * * *', /hour field/],
    ['0 0 0 0 * *', /day field "0"/],
    ['0 0 0 32 * *', /day field/],
    ['0 0 0 * 13 *', /month field/],
    ['0 0 0 * * 8', /day-of-week field/],
    ['0 0 0 * * Funday', /day-of-week field "Funday"/],
    ['0 0 0 * * M', /day-of-week field "M"/],
    ['0 0 0 * Foo *', /month field/],
    ['*/0 * * * * *', /second field "\*\/0": step must be at least 1/],
    ['*/x * * * * *', /second field/],
    ['0 40-10 * * * *', /minute field "40-10": range "40-10" runs backwards/],
    ['0 1-2-3 * * * *', /minute field/],
    ['0 1,,2 * * * *', /minute field "1,,2": empty list element/],
    ['0 -1 * * * *', /minute field/],
    ['0 1.5 * * * *', /minute field/],
    ['0 0 0 30 2 *', /day field "30" never occurs in month field "2"/],
    ['0 0 0 31 4,6,9,11 *', /day field/],
  ])('rejects %j', (expr, message) => {
    expect(() => parseNcrontab(expr)).toThrow(message);
  });
});

describe('nextOccurrence', () => {
  it('runs the default rotation schedule every five minutes on the minute', () => {
    expect(occurrences('0 */5 * * * *', '2026-03-10T10:02:17.250Z', 3)).toEqual([
      '2026-03-10T10:05:00.000Z',
      '2026-03-10T10:10:00.000Z',
      '2026-03-10T10:15:00.000Z',
    ]);
  });

  it('is strictly after the given instant, also when that instant is an occurrence', () => {
    const s = parseNcrontab('0 */5 * * * *');
    expect(iso(nextOccurrence(s, at('2026-03-10T10:05:00.000Z')))).toBe('2026-03-10T10:10:00.000Z');
    expect(iso(nextOccurrence(s, at('2026-03-10T10:04:59.999Z')))).toBe('2026-03-10T10:05:00.000Z');
  });

  it('rolls over the hour, the day, the month and the year', () => {
    expect(occurrences('0 */5 * * * *', '2026-12-31T23:57:00Z', 2)).toEqual([
      '2027-01-01T00:00:00.000Z',
      '2027-01-01T00:05:00.000Z',
    ]);
    expect(occurrences('30 15 10 * * *', '2026-04-30T10:15:30Z', 1)).toEqual(['2026-05-01T10:15:30.000Z']);
  });

  it('fires on weekdays only for 0 0 3 * * Mon-Fri', () => {
    // 2026-03-06 is a Friday.
    expect(occurrences('0 0 3 * * Mon-Fri', '2026-03-06T02:00:00Z', 3)).toEqual([
      '2026-03-06T03:00:00.000Z',
      '2026-03-09T03:00:00.000Z',
      '2026-03-10T03:00:00.000Z',
    ]);
  });

  it('skips months too short for the day', () => {
    expect(occurrences('0 0 12 31 * *', '2026-01-31T12:00:00Z', 3)).toEqual([
      '2026-03-31T12:00:00.000Z',
      '2026-05-31T12:00:00.000Z',
      '2026-07-31T12:00:00.000Z',
    ]);
  });

  it('finds the leap day of 0 0 0 29 2 *', () => {
    expect(occurrences('0 0 0 29 2 *', '2026-01-01T00:00:00Z', 3)).toEqual([
      '2028-02-29T00:00:00.000Z',
      '2032-02-29T00:00:00.000Z',
      '2036-02-29T00:00:00.000Z',
    ]);
    // 2100 is not a leap year.
    expect(occurrences('0 0 0 29 2 *', '2096-03-01T00:00:00Z', 1)).toEqual(['2104-02-29T00:00:00.000Z']);
  });

  it('needs both day of month and day of week to match, as NCrontab does', () => {
    expect(occurrences('0 0 0 13 * Fri', '2026-01-01T00:00:00Z', 3)).toEqual([
      '2026-02-13T00:00:00.000Z',
      '2026-03-13T00:00:00.000Z',
      '2026-11-13T00:00:00.000Z',
    ]);
  });

  it('finds rare day and weekday combinations decades away', () => {
    // 29 February falls on a Monday in 2044, then not before 2072.
    expect(occurrences('0 0 0 29 Feb Mon', '2026-01-01T00:00:00Z', 2)).toEqual([
      '2044-02-29T00:00:00.000Z',
      '2072-02-29T00:00:00.000Z',
    ]);
  });

  it('handles second-level schedules and lists within the same minute', () => {
    expect(occurrences('10,50 * * * * *', '2026-06-01T08:00:10Z', 3)).toEqual([
      '2026-06-01T08:00:50.000Z',
      '2026-06-01T08:01:10.000Z',
      '2026-06-01T08:01:50.000Z',
    ]);
  });

  it('resets lower fields when a higher one moves forward', () => {
    // At 10:59:59 with hours 10,14 and minutes 0,30 the next run is 14:00:00, not 14:30 or 14:59.
    expect(occurrences('0 0,30 10,14 * * *', '2026-06-01T10:59:59Z', 2)).toEqual([
      '2026-06-01T14:00:00.000Z',
      '2026-06-01T14:30:00.000Z',
    ]);
  });

  it('stays fast for sparse schedules', () => {
    const s = parseNcrontab('0 0 0 29 Feb Mon');
    const started = performance.now();
    for (let i = 0; i < 200; i++) nextOccurrence(s, at('2026-01-01T00:00:00Z') + i * 1000);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
