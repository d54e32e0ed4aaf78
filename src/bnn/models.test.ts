import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildModel, type ModelSpec } from './models.js';
import { Dropout } from './layers.js';

const SPEC: ModelSpec = {
  arch: 'mlp',
  precision: 'binary',
  hidden: [16, 16],
  widthMultiplier: 1,
  binarizeFirstLayerInput: false,
  binarizeLastLayer: false,
  batchNorm: true,
  bnMomentum: 0.9,
  bnEpsilon: 1e-3,
};

test('models - inputDropout adds one dropout on the input; without it layer names are unchanged', async () => {
  await tf.setBackend('cpu');
  const plain = buildModel(SPEC, [4, 4, 1], 3, 1);
  const dropped = buildModel({ ...SPEC, inputDropout: 0.5 }, [4, 4, 1], 3, 1);
  const names = (m: typeof plain) => m.layers.map((l) => l.name);
  assert.deepEqual(names(plain), ['flatten_0', 'dense_1', 'bn_2', 'dense_3', 'bn_4', 'dense_5']);
  assert.ok(dropped.layers[1] instanceof Dropout);
  assert.equal((dropped.layers[1] as Dropout).rate, 0.5);
  // Same initial weights, so evaluation (dropout off) gives the same logits.
  const x = tf.tensor4d(
    Float32Array.from({ length: 2 * 16 }, (_, i) => Math.sin(i)),
    [2, 4, 4, 1],
  );
  assert.deepEqual(dropped.forward(x, false).dataSync(), plain.forward(x, false).dataSync());
  // In training, about half the inputs are zeroed and the rest scaled by 1/(1 − rate).
  const big = tf.ones([1, 32, 32, 1]);
  const h = dropped.layers[1].apply(dropped.layers[0].apply(big, true), true).dataSync();
  const zeros = h.filter((v) => v === 0).length;
  assert.ok(zeros > 400 && zeros < 624, `${zeros} of 1024 dropped`);
  assert.ok(h.every((v) => v === 0 || v === 2));
  plain.dispose();
  dropped.dispose();
});
