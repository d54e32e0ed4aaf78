// NATS JetStream's object store as a bucket of named byte streams: where checkpoints outlive the
// host that wrote them (src/checkpoint/store.ts gives the bytes their meaning). The second and
// last file that imports the NATS client; it connects through nats-transport's connectNats, so
// credentials, TLS and their errors are the all-reduce's.
import { StorageType, type JetStreamManager, type NatsConnection, type ObjectStore, type PurgeOpts, type PurgeResponse } from 'nats';
import { connectNats, type NatsTransportOptions } from './nats-transport.js';
import { redactNatsUrl } from './nats-url.js';

export interface NatsObjectBucketOptions extends NatsTransportOptions {
  /** The bucket (created, file storage, when missing). */
  bucket: string;
  /**
   * Replicas of a bucket this creates; default min(3, the servers of the NATS cluster the server
   * reports), 1 for a lone server (and where JetStream cannot place the default). An existing
   * bucket keeps its own.
   */
  replicas?: number;
}

/** JetStream is off on the server, or the bucket cannot be made or reached; the message says what to do. */
export class NatsObjectStoreError extends Error {
  readonly userFacing = true as const;
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NatsObjectStoreError';
  }
}

/** One object: its name and size in bytes. */
export interface StoredObject {
  name: string;
  size: number;
}

/** Largest chunk a put sends (the server's max_payload caps it); the client's default is 128 KiB. */
const CHUNK_BYTES = 1024 * 1024;
/**
 * How long a put waits for JetStream to acknowledge a chunk. The client publishes every chunk as
 * it reads it and collects the acknowledgements at the end, so a large checkpoint's last chunks
 * wait for all before them (the client's default, 5 s, timed out a 268 MB one on a busy host):
 * 15 s, plus a second per 5 MB the caller says the object holds. A put that loses its server
 * mid-way fails after this and is tried again by the caller (ObjectCheckpointStore).
 */
/** A read gives up when no chunk arrived for this long. */
const GET_IDLE_TIMEOUT_MS = 20_000;

function putAckTimeoutMs(bytes: number | undefined): number {
  return 15_000 + Math.ceil((bytes ?? 500e6) / 5e6) * 1000;
}

/**
 * Makes the object store delete chunks message by message instead of purging their subject.
 *
 * The client removes an object's chunks (on delete, on replacing an object, after a failed put)
 * with a stream purge filtered by the chunks' subject. nats-server 2.9 (Debian's) replays that
 * purge from its raft log after an unclean stop (kill -9, power loss) as "drop every message up to
 * the purge's last sequence", ignoring the filter: a cluster killed whole came back with only the
 * messages written after the last purge, so every checkpoint older than the newest retention
 * delete was gone ("no such object"). Deletes of single messages are replayed by sequence, so they
 * are safe: the purge the client calls is replaced, on this bucket only, by finding the matching
 * sequences (a headers-only ordered consumer) and deleting each one.
 */
async function purgeOneByOne(nc: NatsConnection, os: ObjectStore, bucket: string): Promise<void> {
  const stream = `OBJ_${bucket}`;
  const jsm = (os as unknown as { jsm?: JetStreamManager }).jsm;
  if (!jsm?.streams || typeof jsm.streams.purge !== 'function')
    throw new Error('the NATS client changed: its object store has no stream manager to delete chunks with');
  const streams = Object.create(jsm.streams) as JetStreamManager['streams'];
  streams.purge = async (name: string, opts?: PurgeOpts): Promise<PurgeResponse> => {
    const filter = opts && 'filter' in opts ? opts.filter : undefined;
    if (name !== stream || !filter || opts === undefined || Object.keys(opts).length !== 1)
      throw new Error(`refusing a purge of ${name} other than by one subject (${JSON.stringify(opts)})`);
    const purged = await deleteMatching(nc, jsm, stream, filter);
    return { success: true, purged };
  };
  (os as unknown as { jsm: JetStreamManager }).jsm = Object.assign(Object.create(jsm) as JetStreamManager, { streams });
}

/** Deletes every message of `stream` on `subject`, one by one; returns how many. */
async function deleteMatching(nc: NatsConnection, jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  const si = await jsm.streams.info(stream, { subjects_filter: subject });
  const expected = si.state.subjects?.[subject] ?? 0;
  if (expected === 0) return 0;
  const consumer = await nc.jetstream().consumers.get(stream, { filterSubjects: subject, headers_only: true });
  const seqs: number[] = [];
  for (let last = false; !last && seqs.length < expected; ) {
    const batch = await consumer.fetch({ max_messages: 1024, expires: 5000 });
    let got = 0;
    for await (const m of batch) {
      seqs.push(m.seq);
      got++;
      last = m.info.pending === 0;
      if (last) break;
    }
    if (got === 0) break;
  }
  for (const seq of seqs) await jsm.streams.deleteMessage(stream, seq, false);
  return seqs.length;
}

/** One bucket of the object store on its own connection (reconnecting: it outlives server restarts). */
export class NatsObjectBucket {
  private disconnected = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly os: ObjectStore,
    readonly bucket: string,
    /** The servers, without credentials, for messages. */
    readonly where: string,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.disconnected = true;
        else if (s.type === 'reconnect') this.disconnected = false;
      }
    })().catch(() => undefined);
  }

  /** Whether the connection is up now (false while it reconnects, and once closed). */
  get connected(): boolean {
    return !this.disconnected && !this.nc.isClosed();
  }

  /** Connects and opens (or creates) the bucket. NatsObjectStoreError when the server has no JetStream. */
  static async open(options: NatsObjectBucketOptions): Promise<NatsObjectBucket> {
    const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
    const where = `NATS ${servers.map(redactNatsUrl).join(', ')}`;
    const nc = await connectNats({ ...options, reconnect: true });
    try {
      const peers = Math.max(1, nc.info?.connect_urls?.length ?? 1);
      const replicas = options.replicas ?? Math.min(3, peers);
      const views = nc.jetstream().views;
      const os = await views.os(options.bucket, { storage: StorageType.File, replicas }).catch((err: Error) => {
        // a default guessed from the cluster's size that its JetStream cannot place (servers without
        // JetStream, a lone server): one replica; replicas asked for explicitly are never lowered
        if (options.replicas !== undefined || replicas === 1 || !/replica|insufficient resources|clustered/i.test(err.message)) throw err;
        return views.os(options.bucket, { storage: StorageType.File, replicas: 1 });
      });
      await purgeOneByOne(nc, os, options.bucket);
      return new NatsObjectBucket(nc, os, options.bucket, where);
    } catch (err) {
      await nc.close().catch(() => undefined);
      const message = (err as Error).message;
      if (/jetstream not enabled|no responders|503/i.test(`${message} ${(err as { code?: string }).code ?? ''}`))
        throw new NatsObjectStoreError(
          `${where} has no JetStream: start nats-server with -js (or a jetstream {} block) to keep checkpoints in its object store`,
          { cause: err },
        );
      throw new NatsObjectStoreError(`${where}: object store bucket '${options.bucket}': ${message}`, { cause: err });
    }
  }

  /** Stores `chunks` under `name` as they come (replacing an object of that name only once all arrived); returns the size. */
  async put(name: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, sizeHint?: number): Promise<number> {
    const it = (Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]()) as
      | AsyncIterator<Uint8Array>
      | Iterator<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const r = await it.next();
          if (r.done) controller.close();
          else controller.enqueue(r.value);
        },
      },
      { highWaterMark: 0 },
    );
    const info = await this.os.put({ name, options: { max_chunk_size: CHUNK_BYTES } }, stream, { timeout: putAckTimeoutMs(sizeHint) });
    return info.size;
  }

  /** The object's bytes as they arrive, or null when there is none. Iterating throws if the transfer fails or its digest does not match. */
  /**
   * The object's size and its chunks, or null when there is none. A read that stalls (no chunk for
   * GET_IDLE_TIMEOUT_MS: the consumer that streams it was lost, e.g. to a server restarting) fails
   * instead of waiting forever; the caller may try again.
   */
  async get(name: string): Promise<{ size: number; data: AsyncIterable<Uint8Array> } | null> {
    const r = await this.os.get(name);
    if (r === null) return null;
    const where = this.where;
    const data = async function* () {
      const reader = r.data.getReader();
      try {
        for (;;) {
          let timer: NodeJS.Timeout | undefined;
          const stalled = new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`reading '${name}' from ${where} stalled: no data for ${GET_IDLE_TIMEOUT_MS / 1000} s`)),
              GET_IDLE_TIMEOUT_MS,
            );
          });
          const next = await Promise.race([reader.read(), stalled]).finally(() => clearTimeout(timer));
          if (next.done) break;
          yield next.value;
        }
      } finally {
        reader.releaseLock();
        void r.data.cancel().catch(() => undefined);
      }
      const err = await r.error;
      if (err) throw err;
    };
    return { size: r.info.size, data: data() };
  }

  /** Size of the object, or null when there is none. */
  async size(name: string): Promise<number | null> {
    const info = await this.os.info(name);
    return info === null || info.deleted ? null : info.size;
  }

  /** Deletes the object (its chunks are purged); false when there was none. */
  async delete(name: string): Promise<boolean> {
    const info = await this.os.info(name);
    if (info === null || info.deleted) return false;
    await this.os.delete(name);
    return true;
  }

  /** Objects whose name starts with `prefix` (all when absent), by name. */
  async list(prefix = ''): Promise<StoredObject[]> {
    const all = await this.os.list();
    return all
      .filter((i) => !i.deleted && i.name.startsWith(prefix))
      .map((i) => ({ name: i.name, size: i.size }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
  }
}
