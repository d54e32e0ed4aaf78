import type Database from 'better-sqlite3';
import { checkSchemaCurrent, openSqlite } from '../store/db.js';
import { notAStoreMessage, StoreError, StoreSchemaBehindError } from '../store/errors.js';
import { SqlError, SqlRefusedError } from './errors.js';
import { defaultQueryStoreOptions, existingStoreFile, immutableNotice, storeFailure, type QueryStoreOptions } from './open.js';

/** Leading keywords of statements `bnn sql` may run; anything else is refused by name. */
const ALLOWED_KEYWORDS = new Set(['SELECT', 'WITH', 'VALUES', 'EXPLAIN', 'PRAGMA']);

/** Statements refused even though SQLite calls them read-only: they change the connection, not the file. */
const CONNECTION_KEYWORDS = new Set(['ATTACH', 'DETACH', 'BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE']);

export interface SqlResult {
  /** Column names in order; a repeated name gets `_2`, `_3`, ... so rows can be objects. */
  columns: string[];
  /** One array per row, values in column order (integers beyond 2^53 as strings, blobs as hex). */
  rows: SqlValue[][];
}

export type SqlValue = string | number | null;

/**
 * Runs one read-only statement against the database file and returns its rows.
 * The file is opened with `readonly: true, fileMustExist: true`, so neither it nor a
 * missing file is ever written or created (on read-only media: as an immutable snapshot, see
 * openSqlite). Refused (SqlRefusedError, exit 1): more or less
 * than one statement, anything but SELECT / WITH / VALUES / EXPLAIN / read-only PRAGMA,
 * ATTACH, DETACH, transactions, and any statement SQLite does not report as read-only.
 * A file of an older or newer schema than this build's is refused too (StoreSchemaBehindError
 * with how to upgrade it, StoreSchemaTooNewError).
 */
export function runSql(path: string, text: string, options: QueryStoreOptions = {}): SqlResult {
  const opts = { ...defaultQueryStoreOptions(), ...options };
  // Refuse by keyword before touching the file: the message must not depend on the schema.
  const keyword = leadingKeyword(text);
  checkKeyword(text, keyword);
  const file = existingStoreFile(path);
  const { sqlite: db, immutable } = openSqlite(file, { readonly: true, busyTimeoutMs: opts.lockTimeoutMs });
  try {
    checkSchema(db, file, opts.lockTimeoutMs);
    const stale = immutableNotice({ path: file, immutable });
    if (stale !== null) opts.notice?.(stale);
    let stmt: Database.Statement;
    try {
      stmt = db.prepare(text);
    } catch (err) {
      if (err instanceof RangeError && /more than one statement/.test(err.message)) {
        throw new SqlRefusedError(
          'bnn sql runs exactly one statement; this text holds more than one (remove everything after the first ;)',
          keyword,
        );
      }
      throw sqlFailure(file, err, opts.lockTimeoutMs);
    }
    if (!stmt.readonly) {
      throw new SqlRefusedError(
        `bnn sql is read-only: ${describe(text, keyword)} can change the database, so it is refused; use a SELECT`,
        keyword,
      );
    }
    if (!stmt.reader) {
      throw new SqlRefusedError(`bnn sql prints rows: ${describe(text, keyword)} returns none; use a SELECT`, keyword);
    }
    stmt.raw(true).safeIntegers(true);
    const columns = uniqueNames(stmt.columns().map((c) => c.name));
    let raw: unknown[][];
    try {
      raw = stmt.all() as unknown[][];
    } catch (err) {
      throw sqlFailure(file, err, opts.lockTimeoutMs);
    }
    return { columns, rows: raw.map((row) => row.map(toValue)) };
  } finally {
    db.close();
  }
}

/** The statement's first keyword, upper-cased, after leading blanks and comments; '' when none. */
export function leadingKeyword(text: string): string {
  let s = text;
  for (;;) {
    const trimmed = s.replace(/^\s+/, '');
    if (trimmed.startsWith('--')) {
      const nl = trimmed.indexOf('\n');
      s = nl === -1 ? '' : trimmed.slice(nl + 1);
    } else if (trimmed.startsWith('/*')) {
      const close = trimmed.indexOf('*/', 2);
      s = close === -1 ? '' : trimmed.slice(close + 2);
    } else {
      s = trimmed;
      break;
    }
  }
  return /^[A-Za-z_]+/.exec(s)?.[0]?.toUpperCase() ?? '';
}

function checkKeyword(text: string, keyword: string): void {
  if (keyword === '') throw new SqlRefusedError('bnn sql needs one SELECT statement; none was given', keyword);
  if (keyword === 'PRAGMA' && /=/.test(text)) {
    throw new SqlRefusedError(
      `bnn sql is read-only: ${describe(text, keyword)} sets a pragma, so it is refused; read pragmas with SELECT * FROM pragma_table_info('runs') or PRAGMA table_info(runs)`,
      keyword,
    );
  }
  if (!ALLOWED_KEYWORDS.has(keyword)) {
    const why = CONNECTION_KEYWORDS.has(keyword) ? ' (they change the connection)' : '';
    throw new SqlRefusedError(`bnn sql is read-only: ${keyword} statements are refused${why}; use a SELECT`, keyword);
  }
}

function describe(text: string, keyword: string): string {
  const oneLine = text.trim().replace(/\s+/g, ' ');
  return keyword === 'PRAGMA' || keyword === 'EXPLAIN'
    ? `'${oneLine.length > 60 ? `${oneLine.slice(0, 57)}...` : oneLine}'`
    : `this ${keyword} statement`;
}

/**
 * The file must have this build's schema: the tables and columns `bnn sql` users read are
 * those documented for it. An older one is refused (bnn sql never writes, so it cannot
 * upgrade it) with how to upgrade; a newer one is refused naming both versions.
 */
function checkSchema(db: Database.Database, file: string, lockTimeoutMs: number): void {
  try {
    checkSchemaCurrent(db, file);
  } catch (err) {
    if (err instanceof StoreSchemaBehindError && err.fileVersion === 0) throw new StoreError(file, notAStoreMessage(), { cause: err });
    if (err instanceof StoreSchemaBehindError) {
      throw new StoreSchemaBehindError(
        file,
        err.fileVersion,
        err.knownVersion,
        err.pending,
        `bnn sql never writes, so it does not upgrade it: run bnn runs --store ${file} once (it upgrades the file), then query again`,
      );
    }
    throw sqlFailure(file, err, lockTimeoutMs);
  }
}

function sqlFailure(file: string, err: unknown, lockTimeoutMs: number): unknown {
  const mapped = storeFailure(file, err, lockTimeoutMs);
  if (mapped !== err) return mapped;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    return new SqlError(`bnn sql: ${(err as Error).message}`, code, { cause: err });
  }
  return err;
}

function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    return count === 1 ? name : `${name}_${count}`;
  });
}

function toValue(v: unknown): SqlValue {
  if (v === null || typeof v === 'string' || typeof v === 'number') return v;
  if (typeof v === 'bigint') {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (Buffer.isBuffer(v)) return `x'${v.toString('hex')}'`;
  return String(v);
}
