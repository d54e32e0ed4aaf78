// The native backend (fused kernels, OpenBLAS, XNOR) against the pure-JS cpu backend:
// forward and gradients of every model, relative error <= 1e-4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { buildModel, type ModelSpec } from '../bnn/models.js';
import type { Precision } from '../bnn/precision.js';
import { initEngine } from './select.js';
import { crossEntropy } from '../train/trainer.js';
import { Rng } from '../util/rng.js';

interface Result {
  logits: Float32Array;
  grads: Map<string, Float32Array>;
}

function run(spec: ModelSpec, shape: [number, number, number], batch: number): Result {
  const model = buildModel(spec, shape, 5, 3);
  const rng = new Rng(11);
  const x = tf.tensor4d(
    Float32Array.from({ length: batch * shape[0] * shape[1] * shape[2] }, () => rng.normal()),
    [batch, ...shape],
  );
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 5);
  let logits: tf.Tensor | null = null;
  const params = model.params();
  const { value, grads } = tf.variableGrads(
    () => {
      const out = model.forward(x, true);
      logits = tf.keep(out);
      return crossEntropy(out, labels, 5);
    },
    params.map((p) => p.variable),
  );
  const result: Result = { logits: Float32Array.from((logits as unknown as tf.Tensor).dataSync() as Float32Array), grads: new Map() };
  for (const p of params) result.grads.set(p.name, Float32Array.from(grads[p.variable.name].dataSync() as Float32Array));
  tf.dispose([x, value, logits!, ...Object.values(grads)]);
  model.dispose();
  return result;
}

function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += a[i] ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-12);
}

const base: Omit<ModelSpec, 'arch' | 'precision'> = {
  hidden: [96, 80],
  widthMultiplier: 1,
  binarizeFirstLayerInput: false,
  binarizeLastLayer: false,
  batchNorm: true,
  bnMomentum: 0.9,
  bnEpsilon: 1e-3,
};

const cases: { arch: ModelSpec['arch']; precision: Precision; shape: [number, number, number]; width: number; batch: number }[] = [
  ...(['fp32', 'int8', 'binary', 'binary-weights', 'xnor', 'rsign'] as const).map((precision) => ({
    arch: 'mlp' as const,
    precision,
    shape: [6, 6, 2] as [number, number, number],
    width: 1,
    batch: 16,
  })),
  { arch: 'vgg-small', precision: 'binary', shape: [8, 8, 3], width: 1 / 16, batch: 4 },
  { arch: 'vgg-small', precision: 'fp32', shape: [8, 8, 3], width: 1 / 16, batch: 4 },
  { arch: 'resnet18', precision: 'binary', shape: [8, 8, 3], width: 1 / 16, batch: 4 },
  { arch: 'resnet18', precision: 'fp32', shape: [8, 8, 3], width: 1 / 16, batch: 4 },
];

for (const c of cases) {
  test(`engine parity - ${c.arch} ${c.precision}: native forward and gradients match cpu within 1e-4`, async () => {
    const spec: ModelSpec = { ...base, arch: c.arch, precision: c.precision, widthMultiplier: c.width };
    await initEngine({ backend: 'cpu', threads: 1 });
    const ref = run(spec, c.shape, c.batch);
    const info = await initEngine({ backend: 'native', threads: 2 });
    assert.equal(info.backend, 'native');
    const got = run(spec, c.shape, c.batch);
    await initEngine({ backend: 'cpu', threads: 1 });
    assert.ok(relErr(ref.logits, got.logits) <= 1e-4, `logits rel err ${relErr(ref.logits, got.logits)}`);
    assert.equal(got.grads.size, ref.grads.size);
    for (const [name, g] of ref.grads) {
      const e = relErr(g, got.grads.get(name)!);
      assert.ok(e <= 1e-4, `${name}: gradient rel err ${e}`);
    }
  });
}
