import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { loadNativeCodec } from '../native/addon.js';
import { codecKernels, jsKernels, nativeKernels, type CodecKernels } from '../collective/codec-kernels.js';
import { AllReduce } from '../collective/allreduce.js';
import { newRunKey, RunAuth } from '../collective/auth.js';
import type { BenchRankCommand, BenchRankData, BenchRankReply } from './allreduce-rank.js';
import { maxChunkElements, messageBytes, type Compression } from '../collective/codec.js';
import { connectNatsTransport, type NatsTransport } from '../collective/nats-transport.js';
import { startNatsServer, type NatsServerHandle } from '../launch/nats-server.js';
import { defaultAllReduceOptions, resolveAlgorithm, type AllReduceAlgorithm, type AllReduceOptions } from '../collective/options.js';
import { firstBitDifference, randomGradient, rankOrderReduce } from '../collective/testing.js';

export interface AllReduceBenchOptions {
  /** Gradient sizes in bytes of fp32 (each a multiple of 4). */
  sizesBytes: number[];
  /** World sizes to measure. */
  workers: number[];
  compressions: Compression[];
  /** All-reduce algorithms to measure (`auto` resolves per world size). Default ['auto']. */
  algorithms?: Array<AllReduceOptions['algorithm']>;
  /**
   * With and/or without the messages' MAC (runs always MAC; see collective/auth.ts). Both: the two
   * group sets run in alternation within every repetition, so they see the same load. Default [true].
   */
  mac?: boolean[];
  /** Timed repetitions per configuration (after one warm-up); the median is reported. */
  repeats: number;
  /** nats-server max_payload. */
  maxPayloadBytes: number;
  /** `process`: every rank on this event loop; `threads`: one worker thread (own event loop and connection) per rank. */
  ranksIn: 'process' | 'threads';
  /** Elements of the codec kernel timing (0 skips it). Default 4 Mi. */
  codecElements?: number;
  /** Progress lines for people. */
  progress?: (line: string) => void;
}

export interface AllReduceBenchRow {
  workers: number;
  compression: Compression;
  /** The algorithm the ranks ran (what `auto` resolved to). */
  algorithm: AllReduceAlgorithm;
  sizeBytes: number;
  /** Every message carried (and was checked against) a MAC. */
  mac: boolean;
  medianMs: number;
  minMs: number;
  /** sizeBytes × 2(N−1)/N / time (nccl-tests' definition, on the fp32 size). */
  busBytesPerSecond: number;
  /** fp32 gradient bytes reduced per second: sizeBytes / time. */
  effectiveBytesPerSecond: number;
  /** Bytes all ranks published per step (chunk headers included); the server delivers the same amount. */
  wireBytesPerStep: number;
  /** What fp32 all-reduce publishes per step (N × size, headers not counted) divided by wireBytesPerStep. */
  wireReduction: number;
  /** Median time of one publisher sending sizeBytes to one subscriber, in `none`-sized messages. */
  rawMedianMs: number;
  rawMessageBytes: number;
  /** sizeBytes / rawMedianMs. */
  rawPubSubBytesPerSecond: number;
  /** busBytesPerSecond / rawPubSubBytesPerSecond. */
  busOverRaw: number;
  /** For `none`: every rank's result equals the rank-order float32 reference bit for bit. */
  exact: boolean | null;
}

export interface CodecKernelTiming {
  /** `js` or `native-<variant>`. */
  kernels: string;
  /** Nanoseconds per element, median of the repetitions, one thread, over a 4 Mi-element vector. */
  signEncodeNs: number;
  signAccumulateNs: number;
  halfEncodeNs: number;
  halfAccumulateNs: number;
  addF32Ns: number;
}

export interface AllReduceBenchReport {
  server: { maxPayloadBytes: number; maxPendingBytes: number };
  setup: string;
  /** Which codec kernels the ranks ran, and every available variant's speed. */
  codecKernels: string;
  codec: CodecKernelTiming[];
  /** 1-minute load average before and after the all-reduce measurements. */
  loadAverage: { before: number; after: number };
  rows: AllReduceBenchRow[];
}

/** Times the codec kernels (each available native variant, then JavaScript) on one thread. */
export function benchCodecKernels(elements = 1 << 22, repeats = 5): CodecKernelTiming[] {
  const v = randomGradient(elements, 5);
  const residual = new Float32Array(elements);
  const scales = new Uint8Array(4 * Math.ceil(elements / 256));
  const bits = new Uint8Array(Math.ceil(elements / 8));
  const half = new Uint8Array(2 * elements);
  const acc = new Float32Array(elements);
  const bytes = new Uint8Array(v.buffer);
  const time = (f: () => void): number => {
    f();
    const ts: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      f();
      ts.push(performance.now() - t0);
    }
    return (median(ts) * 1e6) / elements;
  };
  const measure = (k: CodecKernels): CodecKernelTiming => ({
    kernels: k.name,
    signEncodeNs: time(() => k.signEncode(v, residual, scales, bits, acc)),
    signAccumulateNs: time(() => k.signAccumulate(scales, bits, acc, false, 1)),
    halfEncodeNs: time(() => k.halfEncode(v, half, null)),
    halfAccumulateNs: time(() => k.halfAccumulate(half, acc, false, 1)),
    addF32Ns: time(() => k.addF32(bytes, acc, false, 1)),
  });
  const out: CodecKernelTiming[] = [];
  const native = loadNativeCodec().codec;
  const nk = nativeKernels().kernels;
  if (native && nk) {
    const prev = native.codecKernel();
    try {
      for (const variant of ['avx512', 'avx2', 'portable'] as const) {
        try {
          native.codecKernel(variant);
        } catch {
          continue; // not supported by this CPU
        }
        out.push(measure(nk));
      }
    } finally {
      native.codecKernel(prev);
    }
  }
  out.push(measure(jsKernels));
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** One publisher and one subscriber connection; `once()` sends `size` bytes in `msgBytes` messages and times delivery. */
async function openRawPubSub(url: string, size: number, msgBytes: number) {
  const pub = await connectNatsTransport({ servers: url, name: 'raw-pub' });
  const subConn = await connectNatsTransport({ servers: url, name: 'raw-sub' });
  const messages = Math.ceil(size / msgBytes);
  const body = new Uint8Array(msgBytes);
  const last = new Uint8Array(size - (messages - 1) * msgBytes);
  let round = 0;
  return {
    async once(): Promise<number> {
      const subject = `bench.raw.${round++}`;
      const sub = subConn.subscribe(subject);
      await subConn.flush();
      let received = 0;
      const done = (async () => {
        for await (const m of sub) {
          received += m.data.byteLength;
          if (received >= size) break;
        }
      })();
      const t0 = performance.now();
      for (let i = 0; i < messages - 1; i++) pub.publish(subject, body);
      pub.publish(subject, last);
      await done;
      return performance.now() - t0;
    },
    async close(): Promise<void> {
      await pub.close();
      await subConn.close();
    },
  };
}

/** One all-reduce step on every rank; resolves with its wall time, bytes published, and whether results were exact (when checked). */
type StepRunner = (check: boolean) => Promise<{ ms: number; wire: number; exact: boolean | null }>;

/** Seed of the ranks' gradients (rank r uses SEED + r). */
const SEED = 17;

/** The ranks of one configuration in this event loop, each with its own NATS connection; MACed with `runKey` unless null. */
async function inProcessRanks(url: string, generation: number, c: BenchConfig, runKey: Uint8Array | null) {
  const { n, compression, algorithm } = c;
  const len = c.size / 4;
  const seed = SEED;
  const transports: NatsTransport[] = [];
  for (let r = 0; r < n; r++) transports.push(await connectNatsTransport({ servers: url, name: `bench-rank-${r}` }));
  const ranks = transports.map(
    (t, rank) =>
      new AllReduce(
        t,
        { runId: 'bench', generation, rank, worldSize: n },
        { compression, algorithm, stepDeadlineMs: 120_000 },
        runKey ? new RunAuth(runKey) : null,
      ),
  );
  const close = async () => {
    await Promise.all(ranks.map((r) => r.close()));
    await Promise.all(transports.map((t) => t.close()));
  };
  try {
    await Promise.all(ranks.map((r) => r.ready()));
  } catch (err) {
    await close();
    throw err;
  }
  const inputs = Array.from({ length: n }, (_, r) => randomGradient(len, seed + r));
  const outs = inputs.map(() => new Float32Array(len)); // reused, as a trainer would
  const step: StepRunner = async (check) => {
    const before = ranks.reduce((s, r) => s + r.stats.bytesSent, 0);
    const t0 = performance.now();
    const results = await Promise.all(ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array, { out: outs[r] as Float32Array })));
    const ms = performance.now() - t0;
    const wire = ranks.reduce((s, r) => s + r.stats.bytesSent, 0) - before;
    let exact: boolean | null = null;
    if (check) {
      const expected = rankOrderReduce(inputs);
      exact = results.every((res) => firstBitDifference(res, expected) === -1);
    }
    return { ms, wire, exact };
  };
  return { step, close };
}

interface RankThread {
  worker: Worker;
  replies: BenchRankReply[];
  waiter: (() => void) | null;
  exited: Promise<void>;
}

function startRankThread(data: BenchRankData): RankThread {
  const ts = import.meta.url.endsWith('.ts');
  const file = new URL(`./allreduce-rank.${ts ? 'ts' : 'js'}`, import.meta.url).href;
  // from a source checkout (run through tsx) the worker registers tsx before loading TypeScript
  const worker = ts
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(file)}); });`,
        { eval: true, workerData: data },
      )
    : new Worker(new URL(file), { workerData: data });
  const t: RankThread = { worker, replies: [], waiter: null, exited: Promise.resolve() };
  const wake = () => {
    const w = t.waiter;
    t.waiter = null;
    w?.();
  };
  worker.on('message', (m: BenchRankReply) => {
    t.replies.push(m);
    wake();
  });
  worker.on('error', (err) => {
    t.replies.push({ type: 'error', message: err.message });
    wake();
  });
  t.exited = new Promise((resolve) => {
    worker.once('exit', () => {
      t.replies.push({ type: 'error', message: `rank ${data.rank} exited` });
      wake();
      resolve();
    });
  });
  return t;
}

async function nextReply(t: RankThread): Promise<BenchRankReply> {
  while (t.replies.length === 0)
    await new Promise<void>((resolve) => {
      t.waiter = resolve;
    });
  const r = t.replies.shift() as BenchRankReply;
  if (r.type === 'error') throw new Error(`bench rank failed: ${r.message}`);
  return r;
}

/** The ranks of one configuration, one worker thread (own event loop and NATS connection) each. */
async function threadRanks(url: string, generation: number, c: BenchConfig, runKey: Uint8Array | null) {
  const { n, compression, algorithm } = c;
  const len = c.size / 4;
  const seed = SEED;
  const ranks = Array.from({ length: n }, (_, rank) =>
    startRankThread({ url, generation, rank, worldSize: n, compression, algorithm, length: len, seed, runKey }),
  );
  const close = async () => {
    for (const t of ranks) t.worker.postMessage({ type: 'stop' } satisfies BenchRankCommand);
    const timer = setTimeout(() => {
      for (const t of ranks) void t.worker.terminate();
    }, 5000);
    await Promise.all(ranks.map((t) => t.exited));
    clearTimeout(timer);
  };
  try {
    await Promise.all(ranks.map((t) => nextReply(t)));
  } catch (err) {
    await close();
    throw err;
  }
  const step: StepRunner = async (check) => {
    const t0 = performance.now();
    for (const t of ranks) t.worker.postMessage({ type: 'go', returnResult: check } satisfies BenchRankCommand);
    const replies = await Promise.all(ranks.map((t) => nextReply(t)));
    const ms = performance.now() - t0;
    const wire = replies.reduce((s, r) => s + (r.type === 'done' ? r.bytesSent : 0), 0);
    let exact: boolean | null = null;
    if (check) {
      const expected = rankOrderReduce(Array.from({ length: n }, (_, r) => randomGradient(len, seed + r)));
      exact = replies.every((r) => r.type === 'done' && r.result !== undefined && firstBitDifference(r.result, expected) === -1);
    }
    return { ms, wire, exact };
  };
  return { step, close };
}

/**
 * Starts its own nats-server (max_pending raised to 1 GiB so ranks are not cut off as slow
 * consumers) and measures every configuration. Each timed repetition runs one raw pub/sub
 * transfer of the same payload, then one all-reduce step, so both see the same machine load.
 */
export async function benchAllreduce(options: AllReduceBenchOptions): Promise<AllReduceBenchReport> {
  const progress = options.progress ?? (() => undefined);
  const codecElements = options.codecElements ?? 1 << 22;
  if (codecElements > 0) progress(`codec kernels over ${codecElements} elements ...`);
  const codec = codecElements > 0 ? benchCodecKernels(codecElements) : [];
  const loadBefore = os.loadavg()[0] as number;
  const maxPendingBytes = 1 << 30;
  const server: NatsServerHandle = await startNatsServer({ maxPayloadBytes: options.maxPayloadBytes, maxPendingBytes });
  try {
    const probe = await connectNatsTransport({ servers: server.url });
    const maxPayload = probe.maxPayload;
    await probe.close();
    const rawMsgBytes = messageBytes('none', maxChunkElements('none', maxPayload - defaultAllReduceOptions().headerRoomBytes));
    const rows: AllReduceBenchRow[] = [];
    let generation = 0;
    const macs = [...new Set(options.mac ?? [true])];
    for (const size of options.sizesBytes) {
      for (const n of options.workers) {
        for (const compression of options.compressions) {
          const algorithms = new Set((options.algorithms ?? ['auto']).map((a) => resolveAlgorithm(a, n, compression)));
          for (const algorithm of algorithms) {
            progress(`${(size / 2 ** 20).toString()} MiB, N=${n}, ${compression}, ${algorithm} ...`);
            const cfg = { n, compression, algorithm, size };
            rows.push(...(await measureConfig(server.url, cfg, macs, () => ++generation, rawMsgBytes, options.repeats, options.ranksIn)));
          }
        }
      }
    }
    return {
      server: { maxPayloadBytes: maxPayload, maxPendingBytes },
      codecKernels: codecKernels().name,
      codec,
      loadAverage: { before: loadBefore, after: os.loadavg()[0] as number },
      setup:
        options.ranksIn === 'threads'
          ? 'one worker thread per rank (own event loop, own NATS connection) in one Node process; nats-server on 127.0.0.1'
          : 'all ranks on one Node event loop, each rank with its own NATS connection; nats-server on 127.0.0.1',
      rows,
    };
  } finally {
    await server.stop();
  }
}

interface BenchConfig {
  n: number;
  compression: Compression;
  algorithm: AllReduceAlgorithm;
  size: number;
}

/**
 * One configuration, once per MAC setting: every timed repetition runs one raw pub/sub transfer
 * of the same payload, then one step of each group set in turn (first one way, then the other),
 * so all see the same load.
 */
async function measureConfig(
  url: string,
  c: BenchConfig,
  macs: boolean[],
  nextGeneration: () => number,
  rawMsgBytes: number,
  repeats: number,
  ranksIn: AllReduceBenchOptions['ranksIn'],
): Promise<AllReduceBenchRow[]> {
  const open = ranksIn === 'threads' ? threadRanks : inProcessRanks;
  const sets: Array<Awaited<ReturnType<typeof open>>> = [];
  const raw = await openRawPubSub(url, c.size, rawMsgBytes);
  try {
    for (const mac of macs) sets.push(await open(url, nextGeneration(), c, mac ? newRunKey() : null));
    const times = macs.map((): number[] => []);
    const rawTimes: number[] = [];
    const exact = macs.map((): boolean | null => null);
    const wire = macs.map(() => 0);
    for (let rep = 0; rep <= repeats; rep++) {
      const rawMs = await raw.once();
      if (rep > 0) rawTimes.push(rawMs);
      // alternate which set goes first, so neither always runs right after the raw transfer
      const order = rep % 2 === 1 ? [...sets.entries()].reverse() : [...sets.entries()];
      for (const [i, set] of order) {
        const r = await set.step(rep === 0 && c.compression === 'none');
        wire[i] = r.wire;
        if (rep === 0) exact[i] = r.exact;
        else times[i]?.push(r.ms);
      }
    }
    return macs.map((mac, i) => row(c, mac, times[i] as number[], wire[i] as number, rawTimes, rawMsgBytes, exact[i] ?? null));
  } finally {
    await raw.close();
    for (const set of sets) await set.close();
  }
}

function row(
  c: BenchConfig,
  mac: boolean,
  times: number[],
  wire: number,
  rawTimes: number[],
  rawMessageBytes: number,
  exact: boolean | null,
): AllReduceBenchRow {
  const { n, compression, algorithm, size } = c;
  const medianMs = median(times);
  const seconds = medianMs / 1000;
  const rawMedianMs = median(rawTimes);
  const rawPubSubBytesPerSecond = size / (rawMedianMs / 1000);
  // fp32 publishes (N−1)/N of the vector per rank in reduce-scatter and each shard once in
  // all-gather, or (allgather) each rank its whole vector once: N × size either way
  const fp32Wire = n === 1 ? 0 : n * size;
  const busBytesPerSecond = (size * 2 * (n - 1)) / n / seconds;
  return {
    workers: n,
    compression,
    algorithm,
    sizeBytes: size,
    mac,
    medianMs,
    minMs: Math.min(...times),
    busBytesPerSecond,
    effectiveBytesPerSecond: size / seconds,
    wireBytesPerStep: wire,
    wireReduction: wire > 0 ? fp32Wire / wire : 1,
    rawMedianMs,
    rawMessageBytes,
    rawPubSubBytesPerSecond,
    busOverRaw: busBytesPerSecond / rawPubSubBytesPerSecond,
    exact,
  };
}
