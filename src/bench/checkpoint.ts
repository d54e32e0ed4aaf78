// `bnn bench-checkpoint`: checkpoint write and read throughput, local disk against NATS
// JetStream's object store, on the same bytes in the same process. Writes stream the tensors
// (CheckpointStore.write: a local file is fsynced and renamed; an object is chunked and
// acknowledged by JetStream, file storage); reads bring the whole file into memory once and
// check its sha256, as a resume does.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, LocalCheckpointStore, ObjectCheckpointStore, type CheckpointStore, type Tensor } from '../checkpoint/index.js';
import { NatsObjectBucket } from '../collective/nats-object-store.js';
import { startNatsServer, type NatsServerHandle } from '../launch/nats-server.js';

export interface CheckpointBenchOptions {
  /** Size of the checkpoint in MiB (parameters, first and second moments: three equal parts). */
  mib: number;
  /** Timed writes and reads of each store. */
  repeats: number;
  /** Use this NATS server (with JetStream) instead of starting one in a temp folder. */
  natsUrl?: string;
  /** Folder under which the local files and the started server's JetStream files go (same disk: a fair comparison); default the OS temp folder. */
  dir?: string;
  progress?: (line: string) => void;
}

export interface StoreTiming {
  store: 'local' | 'nats';
  /** Where: the directory, or the bucket and server. */
  where: string;
  writeMs: number[];
  readMs: number[];
  /** Median throughput in MB/s (10^6 bytes per second). */
  writeMBps: number;
  readMBps: number;
}

export interface CheckpointBenchResult {
  bytes: number;
  repeats: number;
  stores: StoreTiming[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A checkpoint-shaped set of tensors of about `mib` MiB: `param/w`, `optim/m/w`, `optim/v/w`. */
function tensors(mib: number): Record<string, Tensor> {
  const n = Math.max(1, Math.floor((mib * 2 ** 20) / 12));
  const part = (seed: number): Tensor => {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.37 + seed);
    return { dtype: 'F32', shape: [n], data };
  };
  return { 'param/w': part(1), 'optim/m/w': part(2), 'optim/v/w': part(3) };
}

async function time(store: CheckpointStore, where: string, t: Record<string, Tensor>, o: CheckpointBenchOptions): Promise<StoreTiming> {
  const writeMs: number[] = [];
  const readMs: number[] = [];
  let bytes = 0;
  for (let i = 0; i < o.repeats; i++) {
    const location = store.locationOf('bench', `step-${String(i).padStart(8, '0')}`);
    const t0 = performance.now();
    const w = await store.write(location, encodeSafetensors(t, { format: 'bench' }));
    const t1 = performance.now();
    const back = await store.read(location, w.sha256);
    const t2 = performance.now();
    if (back.length !== w.bytes) throw new Error(`${where}: read ${back.length} bytes of ${w.bytes}`);
    bytes = w.bytes;
    writeMs.push(t1 - t0);
    readMs.push(t2 - t1);
    await store.delete(location);
    o.progress?.(`${store.kind}: write ${(t1 - t0).toFixed(0)} ms, read ${(t2 - t1).toFixed(0)} ms`);
  }
  const mbps = (ms: number) => bytes / 1e6 / (ms / 1000);
  return { store: store.kind, where, writeMs, readMs, writeMBps: mbps(median(writeMs)), readMBps: mbps(median(readMs)) };
}

export async function benchCheckpoint(o: CheckpointBenchOptions): Promise<CheckpointBenchResult> {
  mkdirSync(o.dir ?? tmpdir(), { recursive: true });
  const dir = mkdtempSync(join(o.dir ?? tmpdir(), 'bnn-bench-ckpt-'));
  let server: NatsServerHandle | null = null;
  let bucket: NatsObjectBucket | null = null;
  try {
    const t = tensors(o.mib);
    const bytes = encodeSafetensors(t, { format: 'bench' }).reduce((s, c) => s + c.length, 0);
    const local = await time(new LocalCheckpointStore(join(dir, 'local')), join(dir, 'local'), t, o);
    let url = o.natsUrl;
    if (url === undefined) {
      server = await startNatsServer({ jetstream: { storeDir: join(dir, 'jetstream') } });
      url = server.url;
    }
    bucket = await NatsObjectBucket.open({ servers: url, bucket: 'bnn-bench-checkpoints', replicas: 1 });
    const nats = await time(new ObjectCheckpointStore(bucket), `bucket bnn-bench-checkpoints at ${bucket.where}`, t, o);
    return { bytes, repeats: o.repeats, stores: [local, nats] };
  } finally {
    await bucket?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
