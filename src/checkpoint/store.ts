// Where checkpoint files live: a `CheckpointStore` writes a file as a stream of chunks (sha256 and
// size computed on the way), reads one back whole (once) and checks its hash, deletes, sizes and
// lists. Two implementations: a local directory (`<checkpointDir>/<run>/<stem>.safetensors`,
// locations are absolute paths) and a bucket of NATS JetStream's object store (locations are
// `nats-os://<bucket>/<run>/<stem>.safetensors`). A location names its store, so a resume reads a
// checkpoint from wherever it was written (`CheckpointStores.forLocation`).
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CheckpointError, CheckpointStoreUnavailableError } from './errors.js';
import { parseSafetensors, writeFileAtomic, type SafetensorsFile } from './safetensors.js';

/** The scheme of object-store locations. */
export const OBJECT_STORE_SCHEME = 'nats-os://';
/** The object store bucket checkpoints go to. */
export const DEFAULT_CHECKPOINT_BUCKET = 'bnn-checkpoints';
/** Where a run's checkpoints are written: `local` (the default) or `nats` (JetStream object store). */
export const CHECKPOINT_STORES = ['local', 'nats'] as const;
export type CheckpointStoreKind = (typeof CHECKPOINT_STORES)[number];

export type Chunks = Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** One checkpoint a store holds. */
export interface StoredCheckpoint {
  location: string;
  bytes: number;
}

export interface CheckpointStore {
  readonly kind: CheckpointStoreKind;
  /** Where the checkpoint `<stem>.safetensors` of `runId` goes in this store. */
  locationOf(runId: string, stem: string): string;
  /** Writes `chunks` to `location` as they come (replacing what was there only once whole); sha256 and size of what was written. */
  write(location: string, chunks: Chunks): Promise<{ sha256: string; bytes: number }>;
  /** The whole file, read once; CheckpointError naming it when absent, unreadable, or (with `expectedSha256`) not matching. */
  read(location: string, expectedSha256?: string): Promise<Buffer>;
  /** Deletes the file; the bytes freed (0 when it was not there). */
  delete(location: string): Promise<number>;
  /** Size of the file, or null when it is not there. */
  size(location: string): Promise<number | null>;
  /** The checkpoints of `runId` (of every run when absent), by location. */
  list(runId?: string): Promise<StoredCheckpoint[]>;
  close(): Promise<void>;
}

/**
 * A bucket of named byte streams: what the object store implementation needs of NATS
 * (src/collective/nats-object-store.ts's NatsObjectBucket has this shape).
 */
export interface ObjectBucket {
  readonly bucket: string;
  /** Where the bucket is, without credentials, for messages. */
  readonly where: string;
  /** `sizeHint`: the bytes `chunks` will hold, when known (a put may wait longer for a larger one). */
  put(name: string, chunks: Chunks, sizeHint?: number): Promise<number>;
  get(name: string): Promise<{ size: number; data: AsyncIterable<Uint8Array> } | null>;
  size(name: string): Promise<number | null>;
  delete(name: string): Promise<boolean>;
  list(prefix?: string): Promise<{ name: string; size: number }[]>;
  close(): Promise<void>;
  /** Whether its connection is up now; absent: always (a bucket without a connection). */
  readonly connected?: boolean;
}

/** Whether `location` is in an object store. */
export function isObjectLocation(location: string): boolean {
  return location.startsWith(OBJECT_STORE_SCHEME);
}

/** The bucket and object name of an object-store location; null for a path. */
export function parseObjectLocation(location: string): { bucket: string; name: string } | null {
  if (!isObjectLocation(location)) return null;
  const rest = location.slice(OBJECT_STORE_SCHEME.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return null;
  return { bucket: rest.slice(0, slash), name: rest.slice(slash + 1) };
}

const FILE_SUFFIX = '.safetensors';
const checkName = (what: string, s: string): void => {
  if (s === '' || s.includes('/') || s.includes('\\') || s === '.' || s === '..')
    throw new Error(`checkpoint ${what} '${s}' is not a plain name`);
};

/** Hashes and counts chunks as they pass. */
function hashing(chunks: Chunks, into: { hash: ReturnType<typeof createHash>; bytes: number }): AsyncIterable<Uint8Array> {
  return (async function* () {
    for await (const c of chunks) {
      into.hash.update(c);
      into.bytes += c.length;
      yield c;
    }
  })();
}

function verify(location: string, bytes: Buffer, expectedSha256: string | undefined): Buffer {
  if (expectedSha256 === undefined) return bytes;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (expectedSha256.toLowerCase() !== sha256)
    throw CheckpointError.at(location, `sha256 mismatch: expected ${expectedSha256}, file has ${sha256}`);
  return bytes;
}

/** Checkpoints as files under a directory (the default; what every version before wrote). */
export class LocalCheckpointStore implements CheckpointStore {
  readonly kind = 'local' as const;
  /** Absolute; `<root>/<run>/<stem>.safetensors`. */
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  locationOf(runId: string, stem: string): string {
    checkName('run', runId);
    checkName('name', stem);
    return join(this.root, runId, `${stem}${FILE_SUFFIX}`);
  }

  write(location: string, chunks: Chunks): Promise<{ sha256: string; bytes: number }> {
    return writeFileAtomic(location, chunks);
  }

  async read(location: string, expectedSha256?: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(location);
    } catch (err) {
      throw CheckpointError.at(location, `cannot read: ${(err as Error).message}`, { cause: err });
    }
    return verify(location, bytes, expectedSha256);
  }

  async delete(location: string): Promise<number> {
    const bytes = await this.size(location);
    if (bytes === null) return 0;
    try {
      await unlink(location);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw CheckpointError.at(location, `cannot delete: ${(err as Error).message}`, { cause: err });
    }
    return bytes;
  }

  async size(location: string): Promise<number | null> {
    try {
      const s = await stat(location);
      return s.isFile() ? s.size : null;
    } catch {
      return null;
    }
  }

  async list(runId?: string): Promise<StoredCheckpoint[]> {
    const runs = runId !== undefined ? [runId] : await names(this.root, (e) => e.isDirectory() && !e.name.startsWith('.'));
    const out: StoredCheckpoint[] = [];
    for (const run of runs) {
      const dir = join(this.root, run);
      for (const f of await names(dir, (e) => e.isFile() && e.name.endsWith(FILE_SUFFIX) && !e.name.startsWith('.'))) {
        const location = join(dir, f);
        const bytes = await this.size(location);
        if (bytes !== null) out.push({ location, bytes });
      }
    }
    return out;
  }

  async close(): Promise<void> {}
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function names(dir: string, keep: (e: import('node:fs').Dirent) => boolean): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true }))
      .filter(keep)
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** Checkpoints as objects `<run>/<stem>.safetensors` of a JetStream object store bucket. */
export class ObjectCheckpointStore implements CheckpointStore {
  readonly kind = 'nats' as const;
  /**
   * @param retry a failed put is tried `attempts` times in all, a read that fails `readAttempts`
   * times and one that finds no object `missingAttempts` times, waiting `firstDelayMs`, then twice
   * as long each time (default: puts 5 tries from 500 ms, 7.5 s of waiting; failed reads 8 tries,
   * 63.5 s, for a NATS cluster restarting under load; a missing object 3 tries, 1.5 s, for a replica
   * that answers before it has caught up: an object truly gone is reported soon).
   */
  constructor(
    private readonly objects: ObjectBucket,
    private readonly retry: { attempts: number; readAttempts: number; missingAttempts: number; firstDelayMs: number } = {
      attempts: 5,
      readAttempts: 8,
      missingAttempts: 3,
      firstDelayMs: 500,
    },
  ) {}

  get bucket(): string {
    return this.objects.bucket;
  }

  /** Whether the bucket's connection is up now. */
  get connected(): boolean {
    return this.objects.connected ?? true;
  }

  locationOf(runId: string, stem: string): string {
    checkName('run', runId);
    checkName('name', stem);
    return `${OBJECT_STORE_SCHEME}${this.objects.bucket}/${runId}/${stem}${FILE_SUFFIX}`;
  }

  private nameOf(location: string): string {
    const p = parseObjectLocation(location);
    if (!p) throw CheckpointError.at(location, `not a location of the object store (${OBJECT_STORE_SCHEME}<bucket>/<name>)`);
    if (p.bucket !== this.objects.bucket) throw CheckpointError.at(location, `is in bucket '${p.bucket}', not '${this.objects.bucket}'`);
    return p.name;
  }

  /**
   * Writes the object; a put that fails (its server went away mid-put, a stream leader being
   * elected) is tried again from the start, `retry.attempts` times in all: the chunks can only be
   * iterated once, so they are kept for the retries (views of the tensors: nothing is copied).
   */
  async write(location: string, chunks: Chunks): Promise<{ sha256: string; bytes: number }> {
    const name = this.nameOf(location);
    const parts: Uint8Array[] = [];
    const seen = { hash: createHash('sha256'), bytes: 0 };
    for await (const c of hashing(chunks, seen)) parts.push(c);
    const { attempts, firstDelayMs } = this.retry;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.objects.put(name, parts, seen.bytes);
        break;
      } catch (err) {
        if (attempt >= attempts)
          throw CheckpointError.at(location, `write to ${this.objects.where} failed (${attempt} attempts): ${(err as Error).message}`, {
            cause: err,
          });
        await sleep(firstDelayMs * 2 ** (attempt - 1));
      }
    }
    return { sha256: seen.hash.digest('hex'), bytes: seen.bytes };
  }

  /**
   * Reads and verifies the object. A read that failed or stalled on the way is tried again for a
   * while (`retry`): right after the NATS cluster restarts, its stream leaders are being elected
   * and the consumer streaming the object may be lost. One the bucket does not show is tried again
   * briefly (a replica may answer before it caught up), then reported missing.
   */
  async read(location: string, expectedSha256?: string): Promise<Buffer> {
    const name = this.nameOf(location);
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.retry.readAttempts;
      try {
        const got = await this.objects.get(name);
        if (got === null) {
          if (last || attempt >= this.retry.missingAttempts)
            throw CheckpointError.at(location, `cannot read: no such object in ${this.objects.where}`);
        } else return verify(location, await this.collect(location, got), expectedSha256);
      } catch (err) {
        if (err instanceof CheckpointError) throw err;
        // a digest the object store itself found wrong is the checkpoint's fault; anything else is the connection's
        if (/digest/i.test((err as Error).message))
          throw CheckpointError.at(location, `damaged in ${this.objects.where}: ${(err as Error).message}`, { cause: err });
        if (last)
          throw new CheckpointStoreUnavailableError(
            `checkpoint ${location}: cannot read from ${this.objects.where} (${attempt} attempts): ${(err as Error).message}`,
            { cause: err },
          );
      }
      await sleep(this.retry.firstDelayMs * 2 ** (attempt - 1));
    }
  }

  /** One buffer of the announced size, filled as chunks arrive: the bytes are held once. */
  private async collect(location: string, got: { size: number; data: AsyncIterable<Uint8Array> }): Promise<Buffer> {
    const out = Buffer.allocUnsafe(got.size);
    let at = 0;
    for await (const c of got.data) {
      if (at + c.length > out.length) throw CheckpointError.at(location, `the object is larger than its recorded ${got.size} bytes`);
      out.set(c, at);
      at += c.length;
    }
    if (at !== out.length) throw CheckpointError.at(location, `truncated: ${at} of ${got.size} bytes arrived`);
    return out;
  }

  async delete(location: string): Promise<number> {
    const name = this.nameOf(location);
    const bytes = await this.objects.size(name);
    if (bytes === null) return 0;
    return (await this.objects.delete(name)) ? bytes : 0;
  }

  async size(location: string): Promise<number | null> {
    return this.objects.size(this.nameOf(location));
  }

  async list(runId?: string): Promise<StoredCheckpoint[]> {
    const prefix = runId === undefined ? '' : `${runId}/`;
    return (await this.objects.list(prefix))
      .filter((o) => o.name.endsWith(FILE_SUFFIX))
      .map((o) => ({ location: `${OBJECT_STORE_SCHEME}${this.objects.bucket}/${o.name}`, bytes: o.size }));
  }

  close(): Promise<void> {
    return this.objects.close();
  }
}

export interface CheckpointStoresOptions {
  /** Opens a bucket of the object store (a NATS connection); absent: object-store locations are refused with `noObjectsHint`. */
  openBucket?: (bucket: string) => Promise<ObjectBucket>;
  /** What to do to reach an object store, e.g. `pass --nats <url>`. */
  noObjectsHint?: string;
}

/**
 * Every store a process may meet: local files, and object store buckets opened on first use (one
 * connection each, closed by `close`). A location says which store holds it.
 */
/** The object store connections a `CheckpointStores` holds: none opened, one still opening, all up, or one down. */
export type ObjectStoreConnection = 'none' | 'connecting' | 'connected' | 'disconnected';

export class CheckpointStores {
  private readonly buckets = new Map<string, Promise<ObjectCheckpointStore>>();
  /** The buckets of `buckets` whose opening settled successfully. */
  private readonly opened = new Map<string, ObjectCheckpointStore>();
  private readonly files = new LocalCheckpointStore('/');
  constructor(private readonly o: CheckpointStoresOptions = {}) {}

  /** Whether object-store locations can be reached. */
  get hasObjects(): boolean {
    return this.o.openBucket !== undefined;
  }

  /** The object store bucket (default `bnn-checkpoints`), opened once. */
  objects(bucket = DEFAULT_CHECKPOINT_BUCKET): Promise<ObjectCheckpointStore> {
    const open = this.o.openBucket;
    if (!open)
      return Promise.reject(
        new CheckpointError(
          `checkpoints in the NATS object store (bucket ${bucket}) cannot be reached: ${this.o.noObjectsHint ?? 'no NATS url was given'}`,
        ),
      );
    let p = this.buckets.get(bucket);
    if (!p) {
      p = open(bucket).then((b) => new ObjectCheckpointStore(b));
      const opening = p;
      p.then(
        (s) => {
          if (this.buckets.get(bucket) === opening) this.opened.set(bucket, s);
        },
        () => this.buckets.delete(bucket),
      );
      this.buckets.set(bucket, p);
    }
    return p;
  }

  /** The store to write a run's new checkpoints to. */
  async writer(kind: CheckpointStoreKind, checkpointDir: string): Promise<CheckpointStore> {
    return kind === 'nats' ? this.objects() : new LocalCheckpointStore(checkpointDir);
  }

  /** The store holding `location`. */
  async forLocation(location: string): Promise<CheckpointStore> {
    if (!isObjectLocation(location)) return this.files;
    const p = parseObjectLocation(location);
    if (!p) throw CheckpointError.at(location, `not a location of the object store (${OBJECT_STORE_SCHEME}<bucket>/<name>)`);
    if (!this.o.openBucket)
      throw CheckpointError.at(
        location,
        `is in the NATS object store, which cannot be reached here: ${this.o.noObjectsHint ?? 'no NATS url was given'}`,
      );
    return this.objects(p.bucket);
  }

  /** Reads, verifies and parses the checkpoint at `location` (one read). */
  async readCheckpoint(location: string, expectedSha256?: string): Promise<SafetensorsFile> {
    const store = await this.forLocation(location);
    const bytes = await store.read(location, expectedSha256);
    const sha256 = expectedSha256?.toLowerCase() ?? createHash('sha256').update(bytes).digest('hex');
    const { tensors, metadata } = parseSafetensors(bytes, location);
    return { tensors, metadata, sha256, bytes: bytes.length };
  }

  /** Deletes the checkpoint at `location`; bytes freed. */
  async delete(location: string): Promise<number> {
    return (await this.forLocation(location)).delete(location);
  }

  /** Size of the checkpoint at `location`, null when not there. */
  async size(location: string): Promise<number | null> {
    return (await this.forLocation(location)).size(location);
  }

  /** The state of the object store connections opened so far (see `ObjectStoreConnection`). */
  connection(): ObjectStoreConnection {
    if (this.buckets.size === 0) return 'none';
    if ([...this.opened.values()].some((s) => !s.connected)) return 'disconnected';
    return this.opened.size < this.buckets.size ? 'connecting' : 'connected';
  }

  async close(): Promise<void> {
    const opened = [...this.buckets.values()];
    this.buckets.clear();
    this.opened.clear();
    for (const p of opened) await p.then((s) => s.close()).catch(() => undefined);
  }
}
