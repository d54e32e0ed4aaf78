import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../engine/select.js';
import { buildModel, type ModelSpec } from '../bnn/models.js';
import { AdamW } from '../optim/adamw.js';
import { trainStep } from './trainer.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { CheckpointError } from '../checkpoint/index.js';
import { Rng } from '../util/rng.js';

await initEngine({ backend: 'cpu', threads: 1 });

const spec: ModelSpec = {
  arch: 'mlp',
  precision: 'binary',
  hidden: [32, 16],
  widthMultiplier: 1,
  binarizeFirstLayerInput: false,
  binarizeLastLayer: false,
  batchNorm: true,
  bnMomentum: 0.9,
  bnEpsilon: 1e-3,
};
const opts = { lr: 1e-3, binaryLr: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0.01, latentClip: 1 };
const meta = (step: number): CheckpointMeta => ({
  runId: 'r-test',
  epoch: 0,
  step,
  cursor: { epoch: 0, step },
  configHash: 'h',
  arch: 'mlp',
  precision: 'binary',
  inputShape: [4, 4, 1],
  numClasses: 3,
  normalization: { mode: 'none', scale: [1], offset: [0] },
});

function batch(i: number) {
  const rng = new Rng(100 + i);
  return {
    x: tf.tensor4d(
      Float32Array.from({ length: 8 * 16 }, () => rng.normal()),
      [8, 4, 4, 1],
    ),
    labels: Int32Array.from({ length: 8 }, () => rng.int(3)),
  };
}

function steps(model: ReturnType<typeof buildModel>, opt: AdamW, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const { x, labels } = batch(i);
    trainStep(model, opt, x, labels, 1);
    x.dispose();
  }
}

const snapshot = (m: ReturnType<typeof buildModel>) => [
  ...m.params().map((p) => Array.from(p.variable.dataSync())),
  ...m.buffers().map((b) => Array.from(b.values)),
];

test('checkpoint - save after 3 steps, restore into a fresh model and continue: bit-identical to an uninterrupted run', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bnn-ckpt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = buildModel(spec, [4, 4, 1], 3, 5);
  const optA = new AdamW(a.params(), opts);
  steps(a, optA, 0, 3);
  const file = path.join(dir, 'c.safetensors');
  const { sha256 } = await saveCheckpoint(file, a, optA, meta(3));
  steps(a, optA, 3, 6);

  const b = buildModel(spec, [4, 4, 1], 3, 99); // different init: everything must come from the file
  const optB = new AdamW(b.params(), opts);
  const restored = await loadCheckpoint(file, b, optB, sha256);
  assert.deepEqual(restored.cursor, { epoch: 0, step: 3 });
  assert.equal(optB.step, 3);
  steps(b, optB, 3, 6);
  assert.deepEqual(snapshot(b), snapshot(a));
  a.dispose();
  b.dispose();
});

test('checkpoint - a file whose hash does not match is refused and nothing is loaded', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bnn-ckpt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = buildModel(spec, [4, 4, 1], 3, 5);
  const optA = new AdamW(a.params(), opts);
  const file = path.join(dir, 'c.safetensors');
  const { sha256 } = await saveCheckpoint(file, a, optA, meta(0));
  const bytes = await readFile(file);
  bytes[bytes.length - 1] ^= 0xff;
  await writeFile(file, bytes);
  const b = buildModel(spec, [4, 4, 1], 3, 99);
  const before = snapshot(b);
  await assert.rejects(
    loadCheckpoint(file, b, new AdamW(b.params(), opts), sha256),
    (e: unknown) => e instanceof CheckpointError && e.message.includes(file),
  );
  assert.deepEqual(snapshot(b), before);
  a.dispose();
  b.dispose();
});
