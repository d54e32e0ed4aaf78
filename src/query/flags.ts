import { QueryFlagError } from './errors.js';

/**
 * Parsers for query flag values. Each returns a typed value or throws QueryFlagError
 * (exit 1) naming the flag, the value and what would be valid; none does any I/O.
 */

/** One of `valid`, matched case-insensitively, returned in its canonical spelling. */
export function parseChoice<T extends string>(flag: string, value: string, valid: readonly T[]): T {
  const wanted = value.trim().toLowerCase();
  const found = valid.find((v) => v.toLowerCase() === wanted);
  if (found === undefined) throw new QueryFlagError(flag, value, valid);
  return found;
}

/** A comma-separated list of choices (`completed,failed`), at least one. */
export function parseChoices<T extends string>(flag: string, value: string, valid: readonly T[]): T[] {
  const parts = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new QueryFlagError(flag, value, valid);
  return [...new Set(parts.map((p) => parseChoice(flag, p, valid)))];
}

/** A tag to filter by: one tag as written in a run config (non-empty, no surrounding blanks, no comma). */
export function parseTag(flag: string, value: string): string {
  if (value.trim() === '' || value !== value.trim() || value.includes(',')) {
    throw new QueryFlagError(flag, value, 'one tag as recorded in a run config (non-empty, no leading or trailing blanks, no comma; repeat the query per tag)');
  }
  return value;
}

export function parsePositiveInt(flag: string, value: string): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new QueryFlagError(flag, value, 'a positive integer');
  return n;
}

export function parseMilliseconds(flag: string, value: string): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new QueryFlagError(flag, value, 'a whole number of milliseconds, 0 or more');
  return n;
}

const DATE_FORMS = 'an ISO-8601 date (2025-01-31) or UTC/offset date-time (2025-01-31T12:00:00Z)';
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;

/** A date bound as the store's ISO text. */
export interface DateBound {
  /** ISO-8601 UTC with milliseconds, comparable with the store's time columns. */
  iso: string;
  /** True when the value was a bare date (a whole UTC day). */
  wholeDay: boolean;
}

/** `2025-01-31` (a UTC day) or a date-time with `Z` or an offset; a date that does not exist is refused. */
export function parseDateBound(flag: string, value: string): DateBound {
  const v = value.trim();
  const day = DATE_ONLY.exec(v);
  if (day) {
    if (!isCalendarDay(day[1]!, day[2]!, day[3]!)) throw new QueryFlagError(flag, value, DATE_FORMS);
    return { iso: `${v}T00:00:00.000Z`, wholeDay: true };
  }
  const dt = DATE_TIME.exec(v);
  if (dt) {
    const [, y, mo, d, h, mi, s] = dt;
    const date = new Date(v);
    const fieldsOk = Number(mo) >= 1 && Number(mo) <= 12 && Number(h) <= 23 && Number(mi) <= 59 && Number(s ?? 0) <= 59;
    if (fieldsOk && isCalendarDay(y!, mo!, d!) && !Number.isNaN(date.getTime())) return { iso: date.toISOString(), wholeDay: false };
  }
  throw new QueryFlagError(flag, value, DATE_FORMS);
}

function isCalendarDay(y: string, m: string, d: string): boolean {
  const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  return date.getUTCFullYear() === Number(y) && date.getUTCMonth() === Number(m) - 1 && date.getUTCDate() === Number(d);
}

/** The first instant after a bound: the next UTC day for a bare date, else 1 ms later. */
export function endExclusive(bound: DateBound): string {
  const t = new Date(bound.iso).getTime();
  return new Date(bound.wholeDay ? t + 86_400_000 : t + 1).toISOString();
}
