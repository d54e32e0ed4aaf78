// The training loop shared by `bnn train` and (later) cluster workers: forward, loss,
// straight-through backward, AdamW step, evaluation. No I/O: callers persist results.
import * as tf from '@tensorflow/tfjs-core';
import { allocF32 } from '../engine/buffer-pool.js';
import { fillBatch, type Normalization, type Split } from '../data/index.js';
import type { Model } from '../bnn/models.js';
import type { AdamW } from '../optim/adamw.js';
import type { Rng } from '../util/rng.js';

export interface StepResult {
  loss: number;
  correct: number;
  samples: number;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  samples: number;
}

export interface Augment {
  /** Mirror images left-right with probability 1/2. */
  hflip: boolean;
  /** Translate by up to this many pixels in x and y; uncovered pixels take raw value 0. */
  shiftPixels: number;
  /** Draws for this batch; derive it from (seed, epoch, step) so runs and resumes repeat exactly. */
  rng: Rng;
}

/** Mirrors the chosen NHWC images left-right in place. */
function hflipInPlace(values: Float32Array, n: number, [h, w, c]: [number, number, number], rng: Rng): void {
  for (let i = 0; i < n; i++) {
    if (rng.nextFloat() >= 0.5) continue;
    for (let y = 0; y < h; y++) {
      const row = (i * h + y) * w * c;
      for (let a = 0, b = w - 1; a < b; a++, b--) {
        for (let k = 0; k < c; k++) {
          const t = values[row + a * c + k];
          values[row + a * c + k] = values[row + b * c + k];
          values[row + b * c + k] = t;
        }
      }
    }
  }
}

/** Translates each NHWC image by a random (dx, dy) in [−s, s]², filling with the normalised raw 0. */
function shiftInPlace(values: Float32Array, n: number, [h, w, c]: [number, number, number], s: number, rng: Rng, fill: Float32Array): void {
  const per = h * w * c;
  const src = new Float32Array(per);
  for (let i = 0; i < n; i++) {
    const dx = rng.int(2 * s + 1) - s;
    const dy = rng.int(2 * s + 1) - s;
    if (dx === 0 && dy === 0) continue;
    const img = values.subarray(i * per, (i + 1) * per);
    src.set(img);
    for (let y = 0; y < h; y++) {
      const sy = y - dy;
      for (let x = 0; x < w; x++) {
        const sx = x - dx;
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        for (let k = 0; k < c; k++) img[(y * w + x) * c + k] = inside ? src[(sy * w + sx) * c + k] : fill[k];
      }
    }
  }
}

/** Builds the NHWC input tensor and labels of one batch, augmented when `augment` is given. */
export function makeBatch(
  split: Split,
  indices: ArrayLike<number>,
  norm: Normalization,
  shape: [number, number, number],
  augment?: Augment,
): { x: tf.Tensor4D; labels: Int32Array } {
  const n = indices.length;
  const per = shape[0] * shape[1] * shape[2];
  // A buffer per batch (the cpu-family backends keep a reference to it), from the native
  // backend's pool: it comes back when the tensor is disposed. fillBatch writes every value.
  const values = allocF32(n * per);
  const labels = new Int32Array(n);
  fillBatch(split, indices, norm, values, labels);
  if (augment?.hflip) hflipInPlace(values, n, shape, augment.rng);
  if (augment && augment.shiftPixels > 0) shiftInPlace(values, n, shape, augment.shiftPixels, augment.rng, norm.offset);
  return { x: tf.tensor4d(values, [n, ...shape]), labels };
}

function countCorrect(logits: tf.Tensor2D, labels: Int32Array): number {
  const pred = tf.tidy(() => tf.argMax(logits, 1));
  const p = pred.dataSync();
  pred.dispose();
  let c = 0;
  for (let i = 0; i < labels.length; i++) if (p[i] === labels[i]) c++;
  return c;
}

export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array, numClasses: number, labelSmoothing = 0): tf.Scalar {
  return tf.tidy(() => {
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses);
    return tf.losses.softmaxCrossEntropy(onehot, logits, undefined, labelSmoothing) as tf.Scalar;
  });
}

/**
 * Gradients of the mean cross-entropy over one batch, keyed by tfjs variable name.
 * The caller disposes them (e.g. after an all-reduce and the optimizer step).
 */
export function computeGradients(
  model: Model,
  x: tf.Tensor,
  labels: Int32Array,
  labelSmoothing = 0,
): {
  grads: tf.NamedTensorMap;
  loss: number;
  correct: number;
} {
  let logits: tf.Tensor2D | null = null;
  const vars = model.params().map((p) => p.variable);
  const { value, grads } = tf.variableGrads(() => {
    const out = model.forward(x, true);
    logits = tf.keep(out);
    return crossEntropy(out, labels, model.numClasses, labelSmoothing);
  }, vars);
  const loss = value.dataSync()[0];
  value.dispose();
  const correct = countCorrect(logits!, labels);
  (logits as tf.Tensor2D | null)?.dispose();
  return { grads, loss, correct };
}

/** One optimisation step on one batch. */
export function trainStep(
  model: Model,
  optimizer: AdamW,
  x: tf.Tensor,
  labels: Int32Array,
  lrFactor: number,
  labelSmoothing = 0,
): StepResult {
  const { grads, loss, correct } = computeGradients(model, x, labels, labelSmoothing);
  try {
    optimizer.apply(grads, lrFactor);
  } finally {
    tf.dispose(grads);
  }
  return { loss, correct, samples: labels.length };
}

/** Loss and accuracy over a whole split in inference mode (BatchNorm running statistics). */
export function evaluate(model: Model, split: Split, norm: Normalization, batchSize = 1000): EvalResult {
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < split.n; start += batchSize) {
    const end = Math.min(split.n, start + batchSize);
    const idx = new Uint32Array(end - start);
    for (let i = 0; i < idx.length; i++) idx[i] = start + i;
    const { x, labels } = makeBatch(split, idx, norm, model.inputShape);
    const logits = model.forward(x, false);
    const loss = crossEntropy(logits, labels, model.numClasses);
    lossSum += loss.dataSync()[0] * labels.length;
    correct += countCorrect(logits, labels);
    tf.dispose([x, logits, loss]);
  }
  return { loss: lossSum / split.n, accuracy: correct / split.n, samples: split.n };
}
