import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** A tiny synthetic run (optionally a scale-sensitive Adam): no BatchNorm, fp32 MLP, 310 samples in batches of 32 (10 steps per epoch, last batch 22). */
export function writeTinyConfig(dir: string, options: { optimizerEpsilon?: number } = {}): string {
  const file = join(dir, 'tiny.yaml');
  writeFileSync(file, `name: tiny
seed: 3
dataset:
  name: synthetic
  synthetic: { trainSize: 310, testSize: 64, shape: [4, 4, 1], numClasses: 3 }
model: { arch: mlp, hidden: [16], precision: fp32, batchNorm: false }
train:
  epochs: 2
  batchSize: 32
  schedule: { name: cosine }
  optimizer: { lr: 0.01, epsilon: ${options.optimizerEpsilon ?? 1e-7} }
engine: { backend: cpu, threads: 1 }
store: ${join(dir, 'bnn.db')}
checkpointDir: ${join(dir, 'ckpt')}
`);
  return file;
}

export interface WeightsDump {
  runId: string;
  steps: number;
  worldSize: number;
  params: Record<string, number[]>;
}

export function readWeights(dir: string, rank = 0): WeightsDump {
  return JSON.parse(readFileSync(join(dir, `weights-rank${rank}.json`), 'utf8')) as WeightsDump;
}

/** Largest |a − b| / max|b| over the tensors of two dumps (Infinity when their names differ). */
export function maxRelativeDiff(a: WeightsDump, b: WeightsDump): number {
  const names = Object.keys(b.params).sort();
  if (Object.keys(a.params).sort().join() !== names.join()) return Infinity;
  let worst = 0;
  for (const n of names) {
    const x = a.params[n]!;
    const y = b.params[n]!;
    if (x.length !== y.length) return Infinity;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < y.length; i++) {
      scale = Math.max(scale, Math.abs(y[i]!));
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    }
    worst = Math.max(worst, diff / (scale || 1));
  }
  return worst;
}

/** Command lines of live processes that mention `needle` (to prove children were stopped). */
export function processesMentioning(needle: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(needle) && !l.includes('ps -eo'));
}
