// withGradientHook: every quantized kernel's gradient reaches the hook during the backward pass,
// once, last layer first, with the values variableGrads returns; nothing else changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { buildModel, type ModelSpec } from './models.js';
import { withGradientHook } from './layers.js';
import { initEngine } from '../engine/select.js';
import { computeGradients } from '../train/trainer.js';

const SPEC: ModelSpec = {
  arch: 'mlp',
  precision: 'binary',
  hidden: [32, 32],
  widthMultiplier: 1,
  binarizeFirstLayerInput: false,
  binarizeLastLayer: false,
  batchNorm: true,
  bnMomentum: 0.9,
  bnEpsilon: 1e-3,
  dropout: 0.25,
};

for (const backend of ['native', 'cpu'] as const) {
  test(`gradient hook (${backend}) - each kernel's gradient arrives once, last layer first, equal to the returned gradients`, async () => {
    await initEngine({ backend, threads: 1 });
    const x = tf.tensor4d(
      Float32Array.from({ length: 8 * 36 }, (_, i) => Math.sin(i * 0.7)),
      [8, 6, 6, 1],
    );
    const labels = Int32Array.from({ length: 8 }, (_, i) => i % 4);
    const plainModel = buildModel(SPEC, [6, 6, 1], 4, 5);
    const hookedModel = buildModel(SPEC, [6, 6, 1], 4, 5);
    try {
      const plain = computeGradients(plainModel, x, labels);
      const seen: Array<{ name: string; values: Float32Array }> = [];
      const hooked = withGradientHook(
        (name, grad) => {
          seen.push({ name, values: Float32Array.from(grad.dataSync() as Float32Array) });
        },
        () => computeGradients(hookedModel, x, labels),
      );
      const kernels = hookedModel
        .params()
        .filter((p) => p.name.endsWith('/kernel'))
        .map((p) => p.variable.name);
      assert.equal(kernels.length, 3);
      assert.deepEqual(
        seen.map((s) => s.name),
        [...kernels].reverse(),
        'one call per kernel, in backward order',
      );
      for (const s of seen) assert.deepEqual(s.values, hooked.grads[s.name]!.dataSync(), `${s.name}: the hook saw the final gradient`);
      // the hook changes nothing: same loss, same gradients, bit for bit
      assert.equal(hooked.loss, plain.loss);
      for (const p of plainModel.params()) {
        const twin = hookedModel.params().find((q) => q.name === p.name)!;
        assert.deepEqual(hooked.grads[twin.variable.name]!.dataSync(), plain.grads[p.variable.name]!.dataSync(), p.name);
      }
      // outside withGradientHook nothing is called
      const again = computeGradients(hookedModel, x, labels);
      assert.equal(seen.length, 3);
      tf.dispose([again.grads, plain.grads, hooked.grads].flatMap((g) => Object.values(g)));
    } finally {
      x.dispose();
      plainModel.dispose();
      hookedModel.dispose();
    }
  });
}
