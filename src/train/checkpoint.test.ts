import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../engine/select.js';
import { buildModel, type ModelSpec } from '../bnn/models.js';
import { AdamW } from '../optim/adamw.js';
import { trainStep } from './trainer.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { CheckpointError, readSafetensors, writeSafetensors } from '../checkpoint/index.js';
import { NonFiniteStateError } from './errors.js';
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

test('checkpoint - a state with NaN or Inf is refused before any file is touched, naming the tensor and element', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bnn-ckpt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = buildModel(spec, [4, 4, 1], 3, 5);
  const optA = new AdamW(a.params(), opts);
  steps(a, optA, 0, 2);
  const file = path.join(dir, 'c.safetensors');
  const good = await saveCheckpoint(file, a, optA, meta(2));
  const p = a.params()[1]!;
  const v = optA.state().v[p.name] as Float32Array;
  const buffer = a.buffers()[0]!;
  // each poisons one value and returns what puts it back
  const poison = [
    {
      what: `param/${p.name} is NaN (element 3)`,
      set: () => {
        const kept = p.variable.clone();
        const x = Float32Array.from(p.variable.dataSync() as Float32Array);
        x[3] = Number.NaN;
        p.variable.assign(tf.tensor(x, p.variable.shape));
        return () => {
          p.variable.assign(kept);
          kept.dispose();
        };
      },
    },
    { what: `optim/v/${p.name} is Inf (element 0)`, set: () => swap(v, 0, Infinity) },
    { what: `buffer/${buffer.name} is -Inf (element 1)`, set: () => swap(buffer.values, 1, -Infinity) },
  ];
  for (const { what, set } of poison) {
    const undo = set();
    await assert.rejects(
      saveCheckpoint(file, a, optA, meta(3)),
      (e: unknown) => e instanceof NonFiniteStateError && e.what === what && e.message === `${file}: not written: ${what}`,
      what,
    );
    undo();
  }
  const fresh = path.join(dir, 'never.safetensors');
  await assert.rejects(
    saveCheckpoint(fresh, a, optA, meta(3), { 'ef/x': { dtype: 'F32', shape: [2], data: Float32Array.of(1, Number.NaN) } }),
    {
      name: 'NonFiniteStateError',
      message: `${fresh}: not written: ef/x is NaN (element 1)`,
    },
  );
  assert.deepEqual(await readdir(dir), ['c.safetensors'], 'no file, no temporary file');
  // the good file is still there, untouched, and loads
  const b = buildModel(spec, [4, 4, 1], 3, 99);
  assert.equal((await loadCheckpoint(file, b, new AdamW(b.params(), opts), good.sha256)).step, 2);
  a.dispose();
  b.dispose();
});

function swap(a: Float32Array, i: number, x: number): () => void {
  const kept = a[i] as number;
  a[i] = x;
  return () => {
    a[i] = kept;
  };
}

test('checkpoint - loading a file with NaN or Inf (written without the guard) is refused and nothing is loaded', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bnn-ckpt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = buildModel(spec, [4, 4, 1], 3, 5);
  const file = path.join(dir, 'c.safetensors');
  await saveCheckpoint(file, a, new AdamW(a.params(), opts), meta(0));
  const good = await readSafetensors(file);
  const name = `param/${a.params()[0]!.name}`;
  const poisoned = Float32Array.from(good.tensors[name]!.data as Float32Array);
  poisoned[2] = Number.NaN;
  const { sha256 } = await writeSafetensors(file, { ...good.tensors, [name]: { ...good.tensors[name]!, data: poisoned } }, good.metadata);
  const b = buildModel(spec, [4, 4, 1], 3, 99);
  const before = snapshot(b);
  await assert.rejects(loadCheckpoint(file, b, new AdamW(b.params(), opts), sha256), {
    name: 'CheckpointError',
    message: `checkpoint ${file}: tensor '${name}' is NaN (element 2): a state with NaN or Inf cannot be loaded`,
  });
  assert.deepEqual(snapshot(b), before, 'nothing loaded');
  a.dispose();
  b.dispose();
});
