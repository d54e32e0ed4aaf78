// One all-reduce rank of `bnn bench-allreduce --ranks threads`, run in a worker thread with its
// own event loop and NATS connection. Protocol with the parent: it posts {type:'ready'}, then for
// every {type:'go'} runs one step and posts {type:'done', ms, bytesSent, result?}.
import { parentPort, workerData } from 'node:worker_threads';
import { AllReduce } from '../collective/allreduce.js';
import { RunAuth } from '../collective/auth.js';
import type { Compression } from '../collective/codec.js';
import type { AllReduceOptions } from '../collective/options.js';

type AlgorithmChoice = AllReduceOptions['algorithm'];
import { connectNatsTransport } from '../collective/nats-transport.js';
import { randomGradient } from '../collective/testing.js';

export interface BenchRankData {
  url: string;
  generation: number;
  rank: number;
  worldSize: number;
  compression: Compression;
  algorithm: AlgorithmChoice;
  length: number;
  seed: number;
  /** The run secret every message is MACed with; null: unauthenticated. */
  runKey: Uint8Array | null;
}

export type BenchRankCommand = { type: 'go'; returnResult: boolean } | { type: 'stop' };
export type BenchRankReply =
  | { type: 'ready' }
  | { type: 'done'; ms: number; bytesSent: number; result?: Float32Array }
  | { type: 'error'; message: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) return;
  const d = workerData as BenchRankData;
  const transport = await connectNatsTransport({ servers: d.url, name: `bench-rank-${d.rank}` });
  const ar = new AllReduce(
    transport,
    { runId: 'bench', generation: d.generation, rank: d.rank, worldSize: d.worldSize },
    { compression: d.compression, algorithm: d.algorithm, stepDeadlineMs: 120_000 },
    d.runKey ? new RunAuth(d.runKey) : null,
  );
  const input = randomGradient(d.length, d.seed + d.rank);
  const out = new Float32Array(d.length); // reused, as a trainer would
  try {
    await ar.ready();
    port.postMessage({ type: 'ready' } satisfies BenchRankReply);
    for await (const cmd of commands(port)) {
      if (cmd.type === 'stop') break;
      const before = ar.stats.bytesSent;
      const t0 = performance.now();
      const result = await ar.allreduce(input, { out });
      const ms = performance.now() - t0;
      const reply: BenchRankReply = { type: 'done', ms, bytesSent: ar.stats.bytesSent - before };
      if (cmd.returnResult) {
        const copy = Float32Array.from(result);
        reply.result = copy;
        port.postMessage(reply, [copy.buffer]);
      } else port.postMessage(reply);
    }
  } catch (err) {
    port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies BenchRankReply);
  } finally {
    await ar.close();
    await transport.close();
    port.close();
  }
}

async function* commands(port: NonNullable<typeof parentPort>): AsyncGenerator<BenchRankCommand> {
  const { AsyncQueue } = await import('../util/queue.js');
  const q = new AsyncQueue<BenchRankCommand>();
  port.on('message', (m: BenchRankCommand) => q.push(m));
  try {
    yield* q;
  } finally {
    q.stop();
  }
}

void main();
