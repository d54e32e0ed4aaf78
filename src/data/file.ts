import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { DataError, DataFormatError, DatasetNotFoundError } from './errors.js';

const gunzipAsync = promisify(gunzip);

export interface FileBytes {
  bytes: Uint8Array;
  /** True when the file was gzip (magic 1f 8b) and `bytes` is the decompressed content. */
  gzipped: boolean;
}

function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && 'code' in err;
}

/** Reads a file, transparently gunzipping it when it starts with the gzip magic 1f 8b. */
export async function readMaybeGzip(path: string): Promise<FileBytes> {
  let raw: Buffer;
  try {
    raw = await fs.readFile(path);
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') {
      throw new DatasetNotFoundError(path, [path], `${path}: file not found; reinstall the data set or point dataset.dir at its files`, {
        cause: err,
      });
    }
    throw new DataError(`${path}: cannot read: ${(err as Error).message}; check that the file is readable by this user`, { cause: err });
  }
  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) {
    return { bytes: new Uint8Array(raw.buffer, raw.byteOffset, raw.length), gzipped: false };
  }
  try {
    const out = await gunzipAsync(raw);
    return { bytes: new Uint8Array(out.buffer, out.byteOffset, out.length), gzipped: true };
  } catch (err) {
    const reason =
      isErrnoException(err) && err.code === 'Z_BUF_ERROR'
        ? 'unexpected end of compressed data (the .gz file is truncated)'
        : (err as Error).message;
    throw new DataFormatError(path, `corrupt gzip: ${reason}; expected a complete gzip stream`, {
      cause: err,
    });
  }
}

const cache = new Map<string, Promise<unknown>>();

/**
 * Memoises `load()` per process for the file at `path` under `kind` (what was parsed
 * from it). The key includes size and mtime, so a rewritten file is parsed again.
 * A failed load is not cached.
 */
export async function cachedParse<T>(path: string, kind: string, load: () => Promise<T>): Promise<T> {
  let key: string;
  try {
    const st = await fs.stat(path);
    key = `${kind}\0${await fs.realpath(path)}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
  } catch {
    return load(); // let load() report the I/O problem in its own words
  }
  const hit = cache.get(key);
  if (hit) return hit as Promise<T>;
  const pending = load();
  cache.set(key, pending);
  pending.catch(() => cache.delete(key));
  return pending;
}

/** Drops every cached parse (frees memory; tests). */
export function clearDataCache(): void {
  cache.clear();
}

/**
 * Like Promise.all, but waits for every promise and, if any failed, throws the first
 * failure in argument order, so the error reported does not depend on I/O timing.
 */
export async function allInOrder<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises);
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
