import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './helpers/cli.js';

interface Report {
  setup: string;
  codecKernels: string;
  codec: Array<{ kernels: string; signEncodeNs: number; halfEncodeNs: number }>;
  loadAverage: { before: number; after: number };
  rows: Array<{
    workers: number;
    compression: string;
    sizeBytes: number;
    medianMs: number;
    busBytesPerSecond: number;
    rawPubSubBytesPerSecond: number;
    wireReduction: number;
    exact: boolean | null;
  }>;
}

test('collective bench - bench-allreduce --json measures every mode next to raw pub/sub, ranks in threads', async () => {
  const r = await runCli(['bench-allreduce', '--sizes', '0.25', '--workers', '2', '--repeats', '1', '--codec-elements', '4099', '--json'], {
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Report;
  assert.match(report.setup, /worker thread per rank/);
  assert.ok(report.rows.every((row) => row.rawPubSubBytesPerSecond > 0));
  assert.deepEqual(
    report.rows.map((row) => row.compression),
    ['none', 'fp16', 'sign-ef'],
  );
  const [none, fp16, sign] = report.rows;
  assert.equal(none?.exact, true);
  assert.ok((none?.busBytesPerSecond ?? 0) > 0);
  assert.ok(Math.abs((fp16?.wireReduction ?? 0) - 2) < 0.05);
  assert.ok((sign?.wireReduction ?? 0) >= 25, `sign-ef moved ${sign?.wireReduction}× fewer bytes`);
  // every codec kernel available here is timed, JavaScript last; the ranks used the first
  assert.equal(report.codec.at(-1)?.kernels, 'js');
  assert.equal(report.codec[0]?.kernels, report.codecKernels);
  assert.ok(report.codec.every((c) => c.signEncodeNs > 0 && c.halfEncodeNs > 0));
  assert.ok(Number.isFinite(report.loadAverage.before));
});

test('collective bench - in-process ranks and the text table', async () => {
  const r = await runCli(
    [
      'bench',
      'allreduce',
      '--sizes',
      '0.0625',
      '--workers',
      '1,3',
      '--compression',
      'none',
      '--repeats',
      '1',
      '--ranks',
      'process',
      '--codec-elements',
      '0',
    ],
    { timeoutMs: 20_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /all ranks on one Node event loop/);
  assert.match(r.stdout, /raw = one publisher/);
  assert.match(r.stdout, /^64\.0 KiB\s+3\s+none\s.*yes$/m);
});

test('collective bench - bad flags exit 2 naming the flag', async () => {
  const r = await runCli(['bench-allreduce', '--compression', 'int4'], { timeoutMs: 20_000 });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^bnn: error: --compression: 'int4' is not valid; expected one of none, fp16, sign-ef$/m);
});
