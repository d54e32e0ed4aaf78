import { accessSync, constants, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../util/errors.js';

/** The experiment database file cannot be opened, migrated or written. */
export class StoreError extends UserError {
  /** The database file concerned. */
  readonly file: string;

  constructor(file: string, message: string, options: { cause?: unknown } = {}) {
    super(`${file}: ${message}`, options);
    this.name = 'StoreError';
    this.file = file;
  }

  override details(): Record<string, unknown> {
    return { file: this.file };
  }
}

/** The file was written by a newer bnn-cluster, whose schema this build does not know. */
export class StoreSchemaTooNewError extends StoreError {
  constructor(
    file: string,
    /** The file's schema version. */
    readonly fileVersion: number,
    /** The newest schema version this build knows. */
    readonly knownVersion: number,
  ) {
    super(file, `was written by a newer bnn-cluster (schema ${fileVersion}, this build knows ${knownVersion}); upgrade bnn-cluster`);
    this.name = 'StoreSchemaTooNewError';
  }

  override details(): Record<string, unknown> {
    return { file: this.file, fileVersion: this.fileVersion, knownVersion: this.knownVersion };
  }
}

/**
 * The file's schema is older than this build's and the open was read-only without upgrade,
 * so nothing was changed. `hint` says how to upgrade it (the default: open it read-write once).
 */
export class StoreSchemaBehindError extends StoreError {
  constructor(
    file: string,
    /** The file's schema version. */
    readonly fileVersion: number,
    /** The schema version this build writes. */
    readonly knownVersion: number,
    /** Migrations not yet applied to it. */
    readonly pending: number,
    hint = 'open it once without read-only mode to upgrade',
  ) {
    super(file, `its schema is ${pending} migration(s) behind (schema ${fileVersion}, this build writes ${knownVersion}); ${hint}`);
    this.name = 'StoreSchemaBehindError';
  }

  override details(): Record<string, unknown> {
    return { file: this.file, fileVersion: this.fileVersion, knownVersion: this.knownVersion, pending: this.pending };
  }
}

/** The message for an SQLite file that holds no bnn-cluster schema at all (schema 0). */
export function notAStoreMessage(): string {
  return 'not a bnn-cluster experiment database: it has none of its tables (pass the file bnn train or bnn launch records runs in)';
}

/** No run has this id, or the id prefix is ambiguous (`candidates` lists the matches). */
export class RunNotFoundError extends UserError {
  readonly runId: string;
  readonly candidates: readonly string[];

  constructor(runId: string, candidates: readonly string[] = []) {
    super(
      candidates.length === 0
        ? `no run with id or id prefix "${runId}"`
        : `run id prefix "${runId}" is ambiguous: it matches ${candidates.join(', ')}${
            candidates.length >= AMBIGUOUS_LIST_LIMIT ? ', ...' : ''
          }`,
    );
    this.name = 'RunNotFoundError';
    this.runId = runId;
    this.candidates = candidates;
  }

  override details(): Record<string, unknown> {
    return { runId: this.runId, candidates: this.candidates };
  }
}

/** No worker has this id (it never registered with this database). */
export class WorkerNotFoundError extends UserError {
  constructor(readonly workerId: string) {
    super(`no worker with id "${workerId}"`);
    this.name = 'WorkerNotFoundError';
  }

  override details(): Record<string, unknown> {
    return { workerId: this.workerId };
  }
}

/** How many matches an ambiguous-prefix error lists. */
export const AMBIGUOUS_LIST_LIMIT = 10;

/** A run was asked to move to a status its current status does not allow. */
export class RunStateError extends UserError {
  constructor(
    readonly runId: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`run ${runId} is ${from}; it cannot become ${to}`);
    this.name = 'RunStateError';
  }

  override details(): Record<string, unknown> {
    return { runId: this.runId, from: this.from, to: this.to };
  }
}

/** True for SQLite's foreign-key violation (a row naming a run that does not exist). */
export function isForeignKeyViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** How long a lock was waited for, as people read it: `50 ms`, `1.5 s`, `60 s`. */
export function formatWait(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

/** What a lock message tells people to do unless its caller knows better. */
export const DEFAULT_BUSY_HINT = 'try again when it has finished, or raise --lock-timeout-ms';

/**
 * Another process held the database's lock for longer than the busy timeout (SQLite's busy
 * handler retried with backoff all that time). `waitedMs` is that timeout.
 */
export class StoreBusyError extends StoreError {
  constructor(
    file: string,
    readonly waitedMs: number,
    hint: string = DEFAULT_BUSY_HINT,
    options: { cause?: unknown } = {},
  ) {
    super(file, `the database is locked by another process (waited ${formatWait(waitedMs)}); ${hint}`, options);
    this.name = 'StoreBusyError';
  }

  override details(): Record<string, unknown> {
    return { file: this.file, waitedMs: this.waitedMs };
  }
}

/** SQLite could not write: the file system holding the database is full. */
export class StoreFullError extends StoreError {
  constructor(
    file: string,
    /** Bytes free to this user on that file system when the error was seen; null when unknown. */
    readonly freeBytes: number | null,
    options: { cause?: unknown } = {},
  ) {
    const free = freeBytes === null ? 'free space unknown' : `${formatBytes(freeBytes)} free`;
    super(
      file,
      `disk full: SQLite could not write to it (${free} on ${dirname(file)}); free space there, or record runs in a store ` +
        'on another disk (--store, or store: in the run config)',
      options,
    );
    this.name = 'StoreFullError';
  }

  override details(): Record<string, unknown> {
    return { file: this.file, freeBytes: this.freeBytes };
  }
}

/** The file is not an SQLite database, or its pages are damaged (SQLITE_CORRUPT, SQLITE_NOTADB). */
export class StoreCorruptError extends StoreError {
  constructor(file: string, sqliteMessage: string, options: { cause?: unknown } = {}) {
    super(
      file,
      `not an SQLite database, or corrupt (${sqliteMessage}); if it is your experiment database, restore it from a backup ` +
        `or salvage what is readable with \`sqlite3 ${file} .recover | sqlite3 <new file>\` and pass that with --store; ` +
        'otherwise pass the right file with --store',
      options,
    );
    this.name = 'StoreCorruptError';
  }
}

/** The database cannot be written: the file, its directory or its file system is read-only. */
export class StoreReadOnlyError extends StoreError {
  constructor(file: string, sqliteMessage: string, options: { cause?: unknown } = {}) {
    super(
      file,
      `cannot write: the file, its directory or its file system is read-only (${sqliteMessage}); record runs in a writable ` +
        'store (--store, or store: in the run config)',
      options,
    );
    this.name = 'StoreReadOnlyError';
  }
}

/** What a store error message needs beyond the SQLite error: how long a lock was waited for, and what to suggest. */
export interface StoreFailureContext {
  /** The connection's busy timeout: how long SQLite retried before it reported the lock. */
  waitedMs: number;
  /** What the busy message tells people to do. */
  busyHint?: string;
}

/** The SQLite result code (`SQLITE_BUSY`, `SQLITE_CORRUPT`, ...) better-sqlite3 put on an error; undefined for any other error. */
export function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** True for SQLite's "another connection holds the lock" results (SQLITE_BUSY*, SQLITE_LOCKED*): worth retrying later. */
export function isBusy(err: unknown): boolean {
  const code = sqliteCode(err);
  return code !== undefined && /^SQLITE_(BUSY|LOCKED)(_|$)/.test(code);
}

/**
 * The one map from better-sqlite3's SqliteError codes to store errors: a lock held too long,
 * a full disk, a corrupt or foreign file, a read-only file or file system, an I/O error. A
 * plain StoreError whose cause is such an SQLite error is mapped by its cause; a specific
 * store error and any other error come back unchanged.
 */
export function storeErrorFrom(file: string, err: unknown, ctx: StoreFailureContext): unknown {
  const direct = sqliteCode(err);
  const cause = direct === undefined && err?.constructor === StoreError ? (err as StoreError).cause : err;
  const code = sqliteCode(cause);
  if (code === undefined) return err;
  const message = (cause as Error).message;
  const options = { cause: err };
  if (isBusy(cause)) return new StoreBusyError(file, ctx.waitedMs, ctx.busyHint, options);
  if (code === 'SQLITE_FULL') return new StoreFullError(file, freeBytes(file), options);
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return new StoreCorruptError(file, message, options);
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM' || (code.startsWith('SQLITE_CANTOPEN') && !writableDir(file)))
    return new StoreReadOnlyError(file, message, options);
  if (code.startsWith('SQLITE_IOERR')) {
    const free = freeBytes(file);
    // SQLite reports some failed writes on a full disk as I/O errors (a short write to the WAL).
    if (free !== null && free < 64 * 1024) return new StoreFullError(file, free, options);
    return new StoreError(file, `I/O error (${message}, ${code}); check the disk and the file system it is on`, options);
  }
  return err;
}

/** Bytes free to this user on the file system holding `file`; null when that cannot be read. */
function freeBytes(file: string): number | null {
  try {
    const s = statfsSync(dirname(file));
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/** Whether this process may create files beside `file` (SQLite's -wal, -shm and journal). */
export function writableDir(file: string): boolean {
  try {
    accessSync(dirname(file), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number(v.toFixed(1))} ${units[u]}`;
}
