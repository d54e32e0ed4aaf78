import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { openStore, walBytes, type Store } from '../store/db.js';
import { StoreError, storeErrorFrom } from '../store/errors.js';

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
 * `notice` told), then read read-only; one from a newer schema is refused. On read-only media
 * it is read as an immutable snapshot (`notice` told when a -wal file holds changes that
 * snapshot cannot show). A lock held past `lockTimeoutMs`, a corrupt file or a foreign file
 * is a StoreError naming it.
 */
export function openQueryStore(path: string, options: QueryStoreOptions = {}): Store {
  const opts = { ...defaultQueryStoreOptions(), ...options };
  const file = existingStoreFile(path);
  let store: Store;
  try {
    store = openStore(file, {
      readonly: true,
      busyTimeoutMs: opts.lockTimeoutMs,
      upgrade: true,
      onUpgrade: (from, to) => opts.notice?.(upgradeNotice(file, from, to)),
    });
  } catch (err) {
    throw storeFailure(file, err, opts.lockTimeoutMs);
  }
  const stale = immutableNotice(store);
  if (stale !== null) opts.notice?.(stale);
  return store;
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

/**
 * A store error naming `file` for an SQLite failure (a lock held past `lockTimeoutMs`, a
 * corrupt, full or read-only file: storeErrorFrom, the one map of SQLite's codes); any other
 * error is returned unchanged.
 */
export function storeFailure(file: string, err: unknown, lockTimeoutMs: number): unknown {
  return storeErrorFrom(file, err, { waitedMs: lockTimeoutMs });
}

/**
 * The line a query command prints when it read a store on read-only media as an immutable
 * snapshot, saying why (SQLite cannot create the -shm index a WAL database needs there) and,
 * when a -wal file beside it holds changes that snapshot cannot show, what is missing; null
 * for an ordinary open.
 */
export function immutableNotice(store: Pick<Store, 'path' | 'immutable'>): string | null {
  if (!store.immutable) return null;
  const why = `bnn: note: ${store.path} is on read-only media (SQLite cannot create its -shm file there): read as an immutable snapshot`;
  const pending = walBytes(store.path);
  if (pending === 0) return why;
  return (
    `bnn: warning: ${store.path} is on read-only media: read as it was at its last checkpoint; the ${pending} bytes ` +
    `of changes in ${store.path}-wal cannot be applied there (copy the database with its -wal file to writable storage to see them)`
  );
}
