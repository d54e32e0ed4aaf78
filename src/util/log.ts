// Log lines of the long-running commands (coordinator, worker, launch, train): each one a
// timestamp (ISO 8601, UTC, ms), a level and a message, as text for people or as one JSON
// object per line for log shippers. Results and `--json` output never go through here.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogFields = Record<string, unknown>;

/** A log line at a level (default info). A plain `(line) => void` is one too. */
export type LogLine = (msg: string, level?: LogLevel, fields?: LogFields) => void;

/** One line: `ts`, `level` and `msg` first, then its fields. */
export interface LogRecord extends LogFields {
  ts: string;
  level: LogLevel;
  msg: string;
}

export interface Logger {
  readonly format: LogFormat;
  /** The logger as a LogLine, to hand to code that takes one. */
  readonly line: LogLine;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /**
   * A line of a child process that logs in this logger's format, passed on as its own record
   * (its timestamp and level kept) marked with `source`: text `[source] msg`, JSON `"source"`.
   * A line that is not such a record (a crash's stack, another program's output) becomes a new
   * record at `level`.
   */
  relay(line: string, source: string, level?: LogLevel): void;
}

export interface LoggerOptions {
  format: LogFormat;
  /** Receives whole lines, each ending in a newline. */
  write(text: string): void;
  /** Fields every record carries (JSON only). */
  fields?: LogFields;
  now?: () => Date;
}

export function createLogger(o: LoggerOptions): Logger {
  const now = o.now ?? (() => new Date());
  const emit = (r: LogRecord) => o.write(formatLogRecord(o.format, r));
  const line: LogLine = (msg, level = 'info', fields) => emit({ ts: now().toISOString(), level, msg, ...o.fields, ...fields });
  return {
    format: o.format,
    line,
    debug: (msg, fields) => line(msg, 'debug', fields),
    info: (msg, fields) => line(msg, 'info', fields),
    warn: (msg, fields) => line(msg, 'warn', fields),
    error: (msg, fields) => line(msg, 'error', fields),
    relay: (text, source, level = 'info') => {
      const r = parseLogRecord(o.format, text);
      if (!r) return line(o.format === 'text' ? `[${source}] ${text}` : text, level, { source });
      emit(o.format === 'text' ? { ...r, msg: `[${source}] ${r.msg}` } : { ...r, source });
    },
  };
}

/**
 * The record as its line(s): JSON, one line with every field; text, the timestamp, level and
 * message (fields are for machines), one line per line of the message.
 */
export function formatLogRecord(format: LogFormat, r: LogRecord): string {
  const { ts, level, msg, ...fields } = r;
  if (format === 'json') return `${JSON.stringify({ ts, level, msg, ...fields })}\n`;
  const head = `${ts} ${level.padEnd(5)} `;
  return `${msg
    .split('\n')
    .map((l) => head + l)
    .join('\n')}\n`;
}

const TEXT_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (debug|info|warn|error) {1,2}(.*)$/;

/** A line written by formatLogRecord in `format`, read back; null when it is not one. */
export function parseLogRecord(format: LogFormat, line: string): LogRecord | null {
  if (format === 'text') {
    const m = TEXT_LINE.exec(line);
    return m ? { ts: m[1]!, level: m[2] as LogLevel, msg: m[3]! } : null;
  }
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const r = v as LogFields;
  const ok = typeof r.ts === 'string' && typeof r.msg === 'string' && (LOG_LEVELS as readonly unknown[]).includes(r.level);
  return ok ? (r as LogRecord) : null;
}
