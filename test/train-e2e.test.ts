// End to end on the real Fashion-MNIST files: `bnn train` as a child process on a 10%
// class-stratified subset, then the recorded run, its checkpoints, export and predict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { runCli } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';
import { openStore, getRun, listEpochMetrics, listCheckpoints } from '../src/store/index.js';
import { readSafetensors, CheckpointError } from '../src/checkpoint/index.js';

/** Stated bar for 2 epochs of a 256-256 binary MLP on 6,000 training images (measured ~0.82). */
const SUBSET_BAR = 0.78;

test('train e2e - binary MLP on a Fashion-MNIST subset beats the stated accuracy; run, checkpoints, export and predict agree', async (t) => {
  const dir = await tmpDir({ t });
  const store = dir.join('bnn.db');
  const r = await runCli(
    [
      'train',
      'examples/fmnist-mlp-binary.yaml',
      '--epochs',
      '2',
      '--subset',
      '0.1',
      '--set',
      'model.hidden=[256, 256]',
      '--backend',
      'native',
      '--store',
      store,
      '--checkpoint-dir',
      dir.join('ckpt'),
      '--json',
    ],
    { timeoutMs: 240_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(summary.precision, 'binary');
  assert.equal(summary.seed, 1);
  assert.ok(summary.finalTestAcc >= SUBSET_BAR, `final test accuracy ${summary.finalTestAcc} < ${SUBSET_BAR}`);
  assert.ok(summary.samplesPerS > 0 && summary.wallTimeS > 0);

  const s = openStore(store, { readonly: true });
  try {
    const run = getRun(s.db, summary.runId);
    assert.equal(run.status, 'COMPLETED');
    assert.equal(run.backend, 'native');
    assert.equal(run.finalTestAcc, summary.finalTestAcc);
    assert.ok((run.modelSizeBytes ?? 0) > 0 && (run.packedSizeBytes ?? 0) > 0);
    const epochs = listEpochMetrics(s.db, run.id);
    assert.deepEqual(
      epochs.map((e) => e.epoch),
      [1, 2],
    );
    const ckpts = listCheckpoints(s.db, run.id);
    assert.equal(ckpts.length, 2);
    for (const c of ckpts) {
      const f = await readSafetensors(c.path, { expectedSha256: c.sha256 });
      assert.equal(f.bytes, c.bytes);
      assert.ok(f.tensors['param/dense_1/kernel'], 'checkpoint holds the first kernel');
      assert.ok(f.tensors['optim/m/dense_1/kernel'], 'checkpoint holds the optimizer moments');
    }
    await assert.rejects(readSafetensors(ckpts[0].path, { expectedSha256: '0'.repeat(64) }), CheckpointError);
  } finally {
    s.close();
  }

  const out = dir.join('model.bnnpack');
  const ex = await runCli(['export', summary.runId, '--store', store, '--out', out, '--json'], { timeoutMs: 60_000 });
  assert.equal(ex.code, 0, ex.stderr);
  const exported = JSON.parse(ex.stdout);
  assert.equal(exported.bytes, statSync(out).size);
  assert.ok(exported.ratio > 10, `packed ratio ${exported.ratio}`);

  const pr = await runCli(['predict', out, '--json'], { timeoutMs: 60_000 });
  assert.equal(pr.code, 0, pr.stderr);
  const predicted = JSON.parse(pr.stdout);
  assert.equal(predicted.samples, 10_000);
  // The packed runtime (XNOR kernels) reproduces the trained model's test accuracy.
  assert.ok(
    Math.abs(predicted.accuracy - summary.finalTestAcc) <= 0.002,
    `packed ${predicted.accuracy} vs trained ${summary.finalTestAcc}`,
  );
});

test('train e2e - an unknown run id for export is a clear error with exit 1', async (t) => {
  const dir = await tmpDir({ t });
  openStore(dir.join('bnn.db')).close();
  const r = await runCli(['export', 'r-nope', '--store', dir.join('bnn.db')], { timeoutMs: 30_000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /r-nope/);
});

test('train e2e - training is bit-identical whatever --threads is (sgemm tiles fixed by shape)', async (t) => {
  const dir = await tmpDir({ t });
  const params: Record<string, Buffer>[] = [];
  const summaries: { finalTestAcc: number }[] = [];
  for (const threads of [1, 2]) {
    const store = dir.join(`t${threads}.db`);
    // Hidden 1024 > 2 × 256 columns, so every dense sgemm is cut into tiles.
    const r = await runCli(
      [
        'train',
        'examples/fmnist-mlp-binary.yaml',
        '--epochs',
        '1',
        '--subset',
        '0.03',
        '--set',
        'model.hidden=[1024, 1024]',
        '--backend',
        'native',
        '--threads',
        String(threads),
        '--store',
        store,
        '--checkpoint-dir',
        dir.join(`ckpt${threads}`),
        '--json',
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    summaries.push(summary);
    const s = openStore(store, { readonly: true });
    try {
      const [c] = listCheckpoints(s.db, summary.runId);
      const f = await readSafetensors(c.path, { expectedSha256: c.sha256 });
      params.push(
        Object.fromEntries(
          Object.entries(f.tensors)
            .filter(([name]) => name.startsWith('param/') || name.startsWith('optim/'))
            .map(([name, tensor]) => [name, Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)]),
        ),
      );
    } finally {
      s.close();
    }
  }
  assert.ok(Object.keys(params[0]).length > 4);
  assert.deepEqual(Object.keys(params[1]).sort(), Object.keys(params[0]).sort());
  for (const name of Object.keys(params[0])) assert.ok(params[0][name].equals(params[1][name]), `${name} differs between 1 and 2 threads`);
  assert.equal(summaries[1].finalTestAcc, summaries[0].finalTestAcc);
});
