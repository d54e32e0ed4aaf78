// Where a training step's time goes on the native backend: every addon call is timed,
// the rest (tfjs graph, autograd, JS loops, allocation) is reported as one remainder.
// Usage: node --import tsx scripts/profile-step.ts [binary|fp32|...] [threads]
// Run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...` to see OpenBLAS's best kernel.
import * as tf from '@tensorflow/tfjs-core';
import { loadNative } from '../src/native/addon.js';
import { engineState } from '../src/engine/state.js';
import { initEngine } from '../src/engine/select.js';
import { benchModel } from '../src/bench/model.js';
import { AdamW } from '../src/optim/adamw.js';
import { trainStep } from '../src/train/trainer.js';
import type { Precision } from '../src/bnn/precision.js';

const precision = (process.argv[2] ?? 'binary') as Precision;
const threads = Number(process.argv[3] ?? 0);
await initEngine({ backend: 'native', threads });
const raw = loadNative().addon!;
const ms: Record<string, number> = {};
const calls: Record<string, number> = {};
// Kernels look functions up on the addon object at call time: wrap them in place.
const table = raw as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const [name, fn] of Object.entries(table)) {
  table[name] = (...args: unknown[]) => {
    const t0 = performance.now();
    try {
      return fn.apply(raw, args);
    } finally {
      ms[name] = (ms[name] ?? 0) + performance.now() - t0;
      calls[name] = (calls[name] ?? 0) + 1;
    }
  };
}
const model = benchModel(precision);
const opt = new AdamW(model.params(), { lr: 1e-3, binaryLr: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0, latentClip: 1 });
const x0 = Float32Array.from({ length: 256 * 784 }, (_, i) => Math.sin(i));
const labels = Int32Array.from({ length: 256 }, (_, i) => i % 10);
const step = () => {
  const x = tf.tensor4d(Float32Array.from(x0), [256, 28, 28, 1]);
  trainStep(model, opt, x, labels, 1);
  x.dispose();
};
for (let i = 0; i < 3; i++) step();
for (const k of Object.keys(ms)) ms[k] = calls[k] = 0;
const n = 20;
const t0 = performance.now();
for (let i = 0; i < n; i++) step();
const total = (performance.now() - t0) / n;
console.log(
  `${precision} MLP 784-2048-2048-10, batch 256, ${engineState.threads} thread(s): ` +
    `${total.toFixed(1)} ms/step = ${Math.round((256 / total) * 1000)} samples/s`,
);
let native = 0;
for (const [k, v] of Object.entries(ms)
  .filter(([, v]) => v > 0)
  .sort((a, b) => b[1] - a[1])) {
  native += v / n;
  console.log(
    `  ${k.padEnd(20)} ${(v / n).toFixed(2).padStart(7)} ms  ${(calls[k] / n).toFixed(0)} call(s)  ${((100 * v) / n / total).toFixed(0)}%`,
  );
}
console.log(
  `  ${'tfjs + JS (rest)'.padEnd(20)} ${(total - native).toFixed(2).padStart(7)} ms  ${((100 * (total - native)) / total).toFixed(0)}%`,
);
