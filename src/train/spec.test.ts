import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine } from '../engine/select.js';
import { defaultRunConfig } from '../config/index.js';
import { buildModel } from '../bnn/models.js';
import { modelSpecFromConfig, optimizerFromConfig } from './spec.js';
import * as tf from '@tensorflow/tfjs-core';

await initEngine({ backend: 'cpu', threads: 1 });

function firstKernelStep(group: 'binary' | 'fp32'): number {
  const config = defaultRunConfig();
  config.model.hidden = [8];
  config.train.optimizer.firstLayerGroup = group;
  config.train.optimizer.lr = 0.001;
  config.train.optimizer.binaryLr = 0.01;
  const model = buildModel(modelSpecFromConfig(config), [2, 2, 1], 3, 1);
  const opt = optimizerFromConfig(config, model);
  const [first, ...rest] = model.params();
  const before = Float32Array.from(first.variable.dataSync() as Float32Array);
  const grads: tf.NamedTensorMap = {};
  for (const p of [first, ...rest]) grads[p.variable.name] = tf.onesLike(p.variable);
  opt.apply(grads, 1);
  // First Adam step moves every weight by exactly lr (m̂/√v̂ = 1 for a constant gradient).
  const moved = Math.abs(before[0] - (first.variable.dataSync() as Float32Array)[0]);
  tf.dispose(Object.values(grads));
  model.dispose();
  return moved;
}

test('train config - firstLayerGroup puts the first layer latent weights at the binary or the fp32 rate', () => {
  assert.ok(Math.abs(firstKernelStep('binary') - 0.01) < 1e-6);
  assert.ok(Math.abs(firstKernelStep('fp32') - 0.001) < 1e-6);
});
