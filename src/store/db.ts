import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { sql } from 'drizzle-orm';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../config/package-info.js';
import {
  DEFAULT_BUSY_HINT,
  notAStoreMessage,
  sqliteCode,
  StoreBusyError,
  StoreError,
  storeErrorFrom,
  StoreReadOnlyError,
  StoreSchemaBehindError,
  StoreSchemaTooNewError,
  writableDir,
} from './errors.js';
import * as schema from './schema.js';

// better-sqlite3 reads URI file names (`file:...?immutable=1`, how a database on read-only
// media is opened) only when this is set as its addon loads, at the first `new Database`.
// Every path this package opens is absolute, so no plain file name is taken for a URI.
process.env.SQLITE_USE_URI ??= '1';

/**
 * How long a statement waits for another process's lock before it fails (SQLite's busy
 * handler retries with backoff meanwhile): `bnn train --lock-timeout-ms`, and openStore's default.
 */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

export type StoreDb = BetterSQLite3Database<typeof schema>;

/** Whether the store's connection is open and answers a query (one that reads no table, so no lock can hold it up). */
export function storeIsOpen(db: StoreDb): boolean {
  try {
    return db.get<{ one: number }>(sql`SELECT 1 AS one`).one === 1;
  } catch {
    return false;
  }
}

export interface OpenStoreOptions {
  /** Open without writing: no directory creation, no migration (a stale schema is an error). */
  readonly?: boolean;
  /** How long a statement waits for another process's lock before failing (DEFAULT_LOCK_TIMEOUT_MS). */
  busyTimeoutMs?: number;
  /** What the message of a lock held past `busyTimeoutMs` tells people to do. */
  busyHint?: string;
  /**
   * With `readonly`: a store some migrations behind is upgraded first (on a separate
   * read-write connection, the migrations applied in one write transaction), then opened
   * read-only. Without it such a store is a StoreSchemaBehindError. A newer schema is
   * refused either way, and so is a file with no bnn-cluster schema at all (never written).
   */
  upgrade?: boolean;
  /** Called after an upgrade on open, with the file's schema version before and after. */
  onUpgrade?: (from: number, to: number) => void;
}

type ResolvedOpenStoreOptions = Required<Omit<OpenStoreOptions, 'onUpgrade'>>;

export function defaultOpenStoreOptions(): ResolvedOpenStoreOptions {
  return { readonly: false, busyTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS, busyHint: DEFAULT_BUSY_HINT, upgrade: false };
}

export interface Store {
  readonly db: StoreDb;
  /** The raw connection, for pragmas and for tests. */
  readonly sqlite: Database.Database;
  /** Absolute path of the database file (`:memory:` for an in-memory store). */
  readonly path: string;
  readonly readonly: boolean;
  /** Opened as an immutable snapshot: a read-only open of a file on read-only media (see openSqlite). */
  readonly immutable: boolean;
  /** The connection's busy timeout: how long a statement waits for another process's lock. */
  readonly busyTimeoutMs: number;
  /** What a lock message tells people to do. */
  readonly busyHint: string;
  /** Closes the connection; idempotent. */
  close(): void;
}

/** Folder of drizzle-kit migrations, found from the package root (src/ and dist/src/ alike). */
export function migrationsFolder(): string {
  return join(packageRoot(), 'drizzle');
}

/**
 * Opens (creating if needed) the experiment database: parent directory created, WAL
 * journal, busy timeout, foreign keys on, pending migrations applied. A file that is not
 * an SQLite database, or was written by a newer schema, is a StoreError naming the file.
 */
export function openStore(path: string, options: OpenStoreOptions = {}): Store {
  const opts = { ...defaultOpenStoreOptions(), ...options };
  if (!opts.readonly || !opts.upgrade) return open(path, opts);
  try {
    return open(path, opts);
  } catch (err) {
    if (!(err instanceof StoreSchemaBehindError)) throw err;
    // Schema 0: an empty or foreign SQLite file (a wrong --store), not an older store. A
    // read-only command must not write bnn's tables into it.
    if (err.fileVersion === 0) throw new StoreError(err.file, notAStoreMessage(), { cause: err });
    let upgraded: Store;
    try {
      upgraded = open(err.file, { ...opts, readonly: false });
    } catch (cause) {
      if (cause instanceof StoreSchemaTooNewError || cause instanceof StoreBusyError) throw cause;
      const older = `its schema (${err.fileVersion}) is older than this build's (${err.knownVersion})`;
      if (cause instanceof StoreReadOnlyError) {
        throw new StoreError(
          err.file,
          `${older} and it cannot be upgraded where it is (read-only); copy it to writable storage and query the copy`,
          { cause },
        );
      }
      throw new StoreError(err.file, `${older} and upgrading it failed: ${(cause as Error).message}`, { cause });
    }
    upgraded.close();
    opts.onUpgrade?.(err.fileVersion, err.knownVersion);
    return open(err.file, { ...opts, upgrade: false });
  }
}

function open(path: string, opts: ResolvedOpenStoreOptions): Store {
  const memory = path === ':memory:';
  const file = memory ? path : resolve(path);

  if (!memory) {
    if (opts.readonly && !existsSync(file)) throw new StoreError(file, 'no experiment database here');
    if (!opts.readonly) {
      try {
        mkdirSync(dirname(file), { recursive: true });
      } catch (err) {
        throw new StoreError(
          file,
          `cannot create its directory: ${(err as Error).message}; record runs in a writable store (--store, or store: in the run config)`,
          { cause: err },
        );
      }
    }
  }

  const { sqlite, immutable } = openSqlite(file, opts);
  try {
    if (!opts.readonly && !memory) sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
  } catch (err) {
    sqlite.close();
    throw mapped(file, err, opts, 'cannot use as an SQLite database');
  }

  const db = drizzle(sqlite, { schema });
  // Every transaction here writes: take the write lock at BEGIN (IMMEDIATE), so the busy
  // timeout applies. A deferred transaction that reads first and then writes fails at once
  // with "database is locked" when another process wrote in between (two `bnn train` runs
  // or workers sharing one store).
  const deferred = db.transaction.bind(db);
  db.transaction = ((fn, config) => deferred(fn, { behavior: 'immediate', ...config })) as typeof db.transaction;
  try {
    ensureSchema(db, sqlite, file, opts.readonly);
  } catch (err) {
    sqlite.close();
    throw storeErrorFrom(file, err, { waitedMs: opts.busyTimeoutMs, busyHint: opts.busyHint });
  }

  let closed = false;
  return {
    db,
    sqlite,
    path: file,
    readonly: opts.readonly,
    immutable,
    busyTimeoutMs: opts.busyTimeoutMs,
    busyHint: opts.busyHint,
    close() {
      if (closed) return;
      closed = true;
      sqlite.close();
    },
  };
}

/**
 * Runs `fn` on the store, an SQLite failure in it (a lock held past the busy timeout, a full
 * disk, a corrupt page, ...) thrown as the store error naming the file (storeErrorFrom).
 */
export function withStoreErrors<T>(store: Store, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw storeErrorFrom(store.path, err, { waitedMs: store.busyTimeoutMs, busyHint: store.busyHint });
  }
}

/** An SQLite connection as openSqlite made it. */
export interface SqliteConnection {
  sqlite: Database.Database;
  /** Opened with `immutable=1` (read-only media): SQLite takes no locks and reads no -wal file. */
  immutable: boolean;
}

/**
 * Opens the SQLite connection to `file` (absolute, or `:memory:`) with its busy timeout, and
 * reads its schema table once, so a foreign or corrupt file fails here. Read-only, on media
 * this process cannot write (a read-only mount): a WAL database cannot create its -shm index
 * there and SQLite refuses to read it, so it is opened again as immutable (nothing can change
 * it there). Failures are store errors naming the file (storeErrorFrom).
 */
export function openSqlite(file: string, o: { readonly: boolean; busyTimeoutMs: number; busyHint?: string }): SqliteConnection {
  const timeout = Math.max(0, Math.floor(o.busyTimeoutMs));
  const connect = (name: string): Database.Database => {
    try {
      return new Database(name, { readonly: o.readonly, fileMustExist: o.readonly, timeout });
    } catch (err) {
      throw mapped(file, err, o, 'cannot open');
    }
  };
  const probe = (sqlite: Database.Database): unknown => {
    try {
      sqlite.prepare('SELECT count(*) FROM sqlite_master').get();
      return null;
    } catch (err) {
      sqlite.close();
      return err;
    }
  };
  const sqlite = connect(file);
  const failure = probe(sqlite);
  if (failure === null) return { sqlite, immutable: false };
  if (o.readonly && file !== ':memory:' && sqliteCode(failure)?.startsWith('SQLITE_CANTOPEN') && !writableDir(file)) {
    const snapshot = connect(`${pathToFileURL(file).href}?immutable=1`);
    if (probe(snapshot) === null) return { sqlite: snapshot, immutable: true };
  }
  throw mapped(file, failure, o, 'cannot use as an SQLite database');
}

/** `err` as a store error naming `file`: mapped by its SQLite code, else `<what> (<message>)`. */
function mapped(file: string, err: unknown, o: { busyTimeoutMs: number; busyHint?: string }, what: string): StoreError {
  const ctx = { waitedMs: o.busyTimeoutMs, ...(o.busyHint === undefined ? {} : { busyHint: o.busyHint }) };
  const specific = storeErrorFrom(file, err, ctx);
  if (specific instanceof StoreError) return specific;
  return new StoreError(file, `${what} (${(err as Error).message})`, { cause: err });
}

/** Bytes in the -wal file beside `file` (0 when there is none): changes an immutable open does not see. */
export function walBytes(file: string): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}

interface Journal {
  entries: { idx: number; when: number; tag: string }[];
}

function readJournal(folder: string): Journal {
  return JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as Journal;
}

/**
 * The schema version this build writes: the number of checked-in migrations. Stored in the
 * file's `meta` table (`schema_version`) so any build, and any SQLite tool, can tell which
 * schema wrote it.
 */
export function currentSchemaVersion(): number {
  return readJournal(migrationsFolder()).entries.length;
}

function ensureSchema(db: StoreDb, sqlite: Database.Database, file: string, readonly: boolean): void {
  const folder = migrationsFolder();
  const journal = readJournal(folder);
  const known = journal.entries.length;
  const pending = (): number => pendingMigrations(sqlite, file, journal);

  const count = pending();
  if (count > 0) {
    if (readonly) throw new StoreSchemaBehindError(file, fileSchema(sqlite).version, known, count);
    try {
      migrate(db, { migrationsFolder: folder });
    } catch (err) {
      // Another process may have migrated between our check and our write: fine if so.
      if (pending() !== 0) throw new StoreError(file, `migration failed: ${(err as Error).message}`, { cause: err });
    }
  }
  if (!readonly && storedSchemaVersion(sqlite) !== known) {
    // Never lowers it: a newer build that raced us past this point keeps its number.
    sqlite
      .prepare(
        `INSERT INTO meta (key, value) VALUES ('schema_version', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value
         WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)`,
      )
      .run(String(known));
  }
}

/**
 * Checks, without writing, that a connection's file has exactly this build's schema (for
 * readers that bypass openStore, such as `bnn sql`): StoreSchemaTooNewError for a newer one,
 * StoreSchemaBehindError for an older one.
 */
export function checkSchemaCurrent(sqlite: Database.Database, file: string): void {
  const journal = readJournal(migrationsFolder());
  const count = pendingMigrations(sqlite, file, journal);
  if (count > 0) throw new StoreSchemaBehindError(file, fileSchema(sqlite).version, journal.entries.length, count);
}

/** How many of this build's migrations the file lacks; StoreSchemaTooNewError when it has one this build lacks. */
function pendingMigrations(sqlite: Database.Database, file: string, journal: Journal): number {
  const known = journal.entries.length;
  const latestKnown = Math.max(0, ...journal.entries.map((e) => e.when));
  const found = fileSchema(sqlite);
  // A migration this build has never seen (timestamp past our newest) is a newer schema
  // even where an older build of that newer version did not write `meta`.
  if (found.version > known || found.lastApplied > latestKnown) {
    throw new StoreSchemaTooNewError(file, Math.max(found.version, known + 1), known);
  }
  return journal.entries.filter((e) => e.when > found.lastApplied).length;
}

function tableExists(sqlite: Database.Database, name: string): boolean {
  return sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

/** `meta.schema_version`, or null where the file has no `meta` table or row (schema 1). */
function storedSchemaVersion(sqlite: Database.Database): number | null {
  if (!tableExists(sqlite, 'meta')) return null;
  const row = sqlite.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
  return row === undefined ? null : Number(row.value);
}

/**
 * The file's schema: its version (the larger of `meta.schema_version` and the number of
 * applied migrations) and the journal timestamp (`created_at`) of its newest applied
 * migration, 0 when none.
 */
function fileSchema(sqlite: Database.Database): { version: number; lastApplied: number } {
  let applied = 0;
  let lastApplied = 0;
  if (tableExists(sqlite, '__drizzle_migrations')) {
    const row = sqlite.prepare('SELECT count(*) AS n, max(created_at) AS last FROM __drizzle_migrations').get() as {
      n: number;
      last: number | string | null;
    };
    applied = row.n;
    lastApplied = row.last === null ? 0 : Number(row.last);
  }
  const stored = storedSchemaVersion(sqlite);
  return { version: Math.max(applied, stored !== null && Number.isFinite(stored) ? stored : 0), lastApplied };
}
