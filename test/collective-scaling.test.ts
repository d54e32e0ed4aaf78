import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';
import { writeTinyConfig } from './helpers/cluster.js';

interface Report {
  cores: number;
  threadsPerWorker: number;
  loadAverage: { before: number; after: number };
  batchSize: number;
  runs: Array<{
    compression: string;
    batchMode: string | null;
    batchSize: number;
    workers: number;
    status: string;
    samplesPerS: number;
    epochSamplesPerS: number[];
  }>;
  rows: Array<{ compression: string; batchMode: string; workers: number; perWorkerBatch: number; samplesPerS: number; speedup: number }>;
}

test('bench scaling - bnn bench scaling --json trains with 1 and 2 real local workers and reports the ratio', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path, { epochs: 1 });
  const r = await runCli(['bench', 'scaling', config, '--compression', 'sign-ef', '--epochs', '1', '--subset', '1', '--json'], {
    cwd: dir.path,
    timeoutMs: 90_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(report.threadsPerWorker, 1);
  assert.ok(report.cores >= 1 && Number.isFinite(report.loadAverage.before) && Number.isFinite(report.loadAverage.after));
  const b = report.batchSize;
  // one 1-worker run serves both modes; 2 workers split the batch (global) or each take it (per-worker)
  assert.deepEqual(
    report.runs.map((x) => [x.compression, x.workers, x.batchMode, x.batchSize, x.status, x.epochSamplesPerS.length]),
    [
      ['sign-ef', 1, null, b, 'COMPLETED', 1],
      ['sign-ef', 2, 'global', b, 'COMPLETED', 1],
      ['sign-ef', 2, 'per-worker', 2 * b, 'COMPLETED', 1],
    ],
  );
  assert.deepEqual(
    report.rows.map((x) => [x.batchMode, x.workers, x.perWorkerBatch]),
    [
      ['global', 1, b],
      ['global', 2, b / 2],
      ['per-worker', 1, b],
      ['per-worker', 2, b],
    ],
  );
  for (const mode of ['global', 'per-worker']) {
    const [one, two] = report.rows.filter((x) => x.batchMode === mode);
    assert.equal(one?.speedup, 1);
    assert.ok((one?.samplesPerS ?? 0) > 0 && (two?.samplesPerS ?? 0) > 0);
    assert.equal(two?.speedup, (two?.samplesPerS ?? 0) / (one?.samplesPerS ?? 1));
  }
});

test('bench scaling - bad flags are bad usage (2); a config that does not exist fails (1)', async (t) => {
  const dir = await tmpDir({ t });
  const bad = await runCli(['bench-scaling', writeTinyConfig(dir.path), '--compression', 'int4'], { cwd: dir.path });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^bnn: error: --compression: 'int4' is not valid; expected one of none, fp16, sign-ef$/m);
  const badBatch = await runCli(['bench-scaling', writeTinyConfig(dir.path), '--batch', 'local'], { cwd: dir.path });
  assert.equal(badBatch.code, 2);
  assert.match(badBatch.stderr, /^bnn: error: --batch: 'local' is not valid; expected one of global, per-worker$/m);
  const missing = await runCli(['bench', 'scaling', dir.join('nope.yaml')], { cwd: dir.path });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /config '.*nope\.yaml' not found/);
});
