/** The store's one time format: ISO-8601 UTC with milliseconds (sorts as text). */
export function isoTime(date: Date = new Date()): string {
  return date.toISOString();
}
