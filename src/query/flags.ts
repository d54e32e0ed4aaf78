import { z } from 'zod';
import { listFlag, textFlag } from '../config/flags.js';

/**
 * Schemas of the query flag values that are more than a number or a choice (src/config/flags.ts
 * has those): dates, tags, run id lists. Checked by parseFlags, which names the flag, the
 * value and what is valid in any error; none does any I/O.
 */

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
export const dateBoundFlag = textFlag(DATE_FORMS, (value): DateBound | undefined => {
  const v = value.trim();
  const day = DATE_ONLY.exec(v);
  if (day) return isCalendarDay(day[1]!, day[2]!, day[3]!) ? { iso: `${v}T00:00:00.000Z`, wholeDay: true } : undefined;
  const dt = DATE_TIME.exec(v);
  if (dt) {
    const [, y, mo, d, h, mi, s] = dt;
    const date = new Date(v);
    const fieldsOk = Number(mo) >= 1 && Number(mo) <= 12 && Number(h) <= 23 && Number(mi) <= 59 && Number(s ?? 0) <= 59;
    if (fieldsOk && isCalendarDay(y!, mo!, d!) && !Number.isNaN(date.getTime())) return { iso: date.toISOString(), wholeDay: false };
  }
  return undefined;
});

/** A tag to filter by: one tag as written in a run config (non-empty, no surrounding blanks, no comma). */
export const tagFlag = textFlag(
  'one tag as recorded in a run config (non-empty, no leading or trailing blanks, no comma; repeat the query per tag)',
  (value) => (value.trim() === '' || value !== value.trim() || value.includes(',') ? undefined : value),
);

/** `--runs a,b,c`: run ids or unique id prefixes, at least one. */
export const runIdListFlag = listFlag(z.string()).describe('a comma-separated list of run ids or id prefixes');

function isCalendarDay(y: string, m: string, d: string): boolean {
  const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  return date.getUTCFullYear() === Number(y) && date.getUTCMonth() === Number(m) - 1 && date.getUTCDate() === Number(d);
}

/** The first instant after a bound: the next UTC day for a bare date, else 1 ms later. */
export function endExclusive(bound: DateBound): string {
  const t = new Date(bound.iso).getTime();
  return new Date(bound.wholeDay ? t + 86_400_000 : t + 1).toISOString();
}
