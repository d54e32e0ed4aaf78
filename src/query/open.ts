import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { openStore, type Store } from '../store/db.js';
import { StoreError } from '../store/errors.js';

/** Where the query commands look for the experiment database unless `--store` says otherwise. */
export const DEFAULT_STORE_PATH = './runs/bnn.db';

export interface QueryStoreOptions {
  /** How long to wait for another process's lock before giving up. */
  lockTimeoutMs?: number;
  /**
   * Gets one line (no newline) when the store was a schema behind and was upgraded on open;
   * the commands print it on stderr.
   */
  notice?: (line: string) => void;
}

export function defaultQueryStoreOptions(): Required<Omit<QueryStoreOptions, 'notice'>> {
  return { lockTimeoutMs: 2_000 };
}

/** The line a query command prints after upgrading an older store on open. */
export function upgradeNotice(file: string, from: number, to: number): string {
  return `bnn: upgraded ${file} from schema ${from} to ${to} (one-time; older bnn builds will refuse it now)`;
}

/**
 * The database file for a read-only command: it must already exist (nothing is created),
 * and must be a regular file. Returns the absolute path.
 */
export function existingStoreFile(path: string): string {
  const file = resolve(path);
  if (!existsSync(file)) {
    throw new StoreError(file, 'no experiment database here (pass --store <file>, or record a run with bnn train first)');
  }
  if (!statSync(file).isFile()) throw new StoreError(file, 'not a file');
  return file;
}

/**
 * Opens the experiment database read-only for a query. Never creates the file. A store from
 * an older schema is upgraded first (its migrations applied in one short write transaction,
 * `notice` told), then read read-only; one from a newer schema is refused. A lock held past
 * `lockTimeoutMs`, a corrupt file or a foreign file is a StoreError naming it.
 */
export function openQueryStore(path: string, options: QueryStoreOptions = {}): Store {
  const opts = { ...defaultQueryStoreOptions(), ...options };
  const file = existingStoreFile(path);
  try {
    return openStore(file, {
      readonly: true,
      busyTimeoutMs: opts.lockTimeoutMs,
      upgrade: true,
      onUpgrade: (from, to) => opts.notice?.(upgradeNotice(file, from, to)),
    });
  } catch (err) {
    throw storeFailure(file, err, opts.lockTimeoutMs);
  }
}

/** Runs `fn` on a read-only store and closes it afterwards, mapping SQLite lock and corruption errors. */
export function withQueryStore<T>(path: string, options: QueryStoreOptions, fn: (store: Store) => T): T {
  const opts = { ...defaultQueryStoreOptions(), ...options };
  const store = openQueryStore(path, opts);
  try {
    return fn(store);
  } catch (err) {
    throw storeFailure(store.path, err, opts.lockTimeoutMs);
  } finally {
    store.close();
  }
}

const LOCK_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY']);
const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);

/**
 * A clearer StoreError for a lock or a corrupt file (found directly or as the `cause` of a
 * StoreError from openStore); any other error is returned unchanged.
 */
export function storeFailure(file: string, err: unknown, lockTimeoutMs: number): unknown {
  const code = sqliteCode(err) ?? sqliteCode((err as { cause?: unknown } | null)?.cause);
  if (code !== undefined && LOCK_CODES.has(code)) {
    return new StoreError(
      file,
      `the database is locked by another process (waited ${lockTimeoutMs} ms); try again when it has finished, or raise --lock-timeout-ms`,
      { cause: err },
    );
  }
  if (code !== undefined && CORRUPT_CODES.has(code) && !(err instanceof StoreError)) {
    return new StoreError(file, `not an SQLite database, or corrupt (${(err as Error).message})`, { cause: err });
  }
  return err;
}

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}
