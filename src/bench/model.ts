// Training and inference throughput of the example MLPs (784-2048-2048-10), measured on
// the engine as `bnn train` runs it. Inputs are random: speed does not depend on values.
import * as tf from '@tensorflow/tfjs-core';
import { buildModel, type Model } from '../bnn/models.js';
import type { Precision } from '../bnn/precision.js';
import { AdamW } from '../optim/adamw.js';
import { trainStep } from '../train/trainer.js';
import { packModel } from '../export/packed.js';
import { createPackedModel } from '../export/runtime.js';
import type { NativeAddon } from '../native/addon.js';
import { Rng } from '../util/rng.js';

export interface ThroughputResult {
  samplesPerS: number;
  steps: number;
  seconds: number;
}

export const BENCH_MLP_HIDDEN = [2048, 2048];
const INPUT: [number, number, number] = [28, 28, 1];

export function benchModel(precision: Precision): Model {
  return buildModel(
    {
      arch: 'mlp',
      precision,
      hidden: BENCH_MLP_HIDDEN,
      widthMultiplier: 1,
      binarizeFirstLayerInput: false,
      binarizeLastLayer: false,
      batchNorm: true,
      bnMomentum: 0.9,
      bnEpsilon: 1e-3,
    },
    INPUT,
    10,
    1,
  );
}

function randomInput(batch: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const x = new Float32Array(batch * 784);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const labels = Int32Array.from({ length: batch }, () => rng.int(10));
  return { x, labels };
}

/** Training throughput: `warmup` steps, then steps until `minSeconds` have passed. */
export function benchTraining(precision: Precision, batch = 256, minSeconds = 3, warmup = 3): ThroughputResult {
  const model = benchModel(precision);
  const opt = new AdamW(model.params(), {
    lr: 1e-3,
    binaryLr: 1e-2,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-7,
    weightDecay: 0,
    latentClip: 1,
  });
  const { x, labels } = randomInput(batch, 7);
  const step = () => {
    const xt = tf.tensor4d(Float32Array.from(x), [batch, ...INPUT]);
    trainStep(model, opt, xt, labels, 1);
    xt.dispose();
  };
  const result = timeLoop(step, batch, { warmup, minSeconds, minSteps: 3 });
  model.dispose();
  return result;
}

/** Runs `fn` `warmup` times, then until `minSeconds` and `minSteps` have both passed. */
function timeLoop(fn: () => unknown, batch: number, o: { warmup: number; minSeconds: number; minSteps: number }): ThroughputResult {
  for (let i = 0; i < o.warmup; i++) fn();
  let steps = 0;
  const t0 = performance.now();
  while ((performance.now() - t0) / 1000 < o.minSeconds || steps < o.minSteps) {
    fn();
    steps++;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { samplesPerS: (steps * batch) / seconds, steps, seconds };
}

/** Inference throughput of the packed runtime; `packed` false keeps every kernel FP32 (the baseline). */
export function benchInference(
  addon: NativeAddon,
  precision: Precision,
  packed: boolean,
  batch: number,
  minSeconds = 2,
): ThroughputResult & { fileBytes: number } {
  const model = benchModel(precision);
  const norm = { mode: 'standard' as const, scale: Float32Array.of(1 / 255 / 0.353), offset: Float32Array.of(-0.286 / 0.353) };
  const { tensors, layout } = packModel(model, norm, !packed);
  const bytes = Object.values(tensors).reduce((s, t) => s + t.data.byteLength, 0);
  const runner = createPackedModel(layout, tensors, addon);
  model.dispose();
  // Each model takes the input in its natural form: the packed model raw 8-bit pixels (its
  // first layer runs on their bit planes), the FP32 model normalised floats.
  const rng = new Rng(9);
  const raw = Uint8Array.from({ length: batch * 784 }, () => rng.int(256));
  const x = Float32Array.from(raw, (v) => (v / 255 - 0.286) / 0.353);
  const once = packed ? () => runner.predictRaw(raw, batch) : () => runner.predict(x, batch);
  return { ...timeLoop(once, batch, { warmup: 3, minSeconds, minSteps: 5 }), fileBytes: bytes };
}
