import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetricsReport } from '../src/rpc/index.js';
import { tmpDir } from '../test/helpers/tmp.js';
import { ProgressReporter } from './progress.js';

test('worker progress - steps and all-reduce traffic are batched into one report; stop() sends the rest once; a failed send never throws', async (t) => {
  const dir = await tmpDir({ t });
  const sent: Array<Partial<MetricsReport>> = [];
  let bytes = 0;
  const reporter = new ProgressReporter(
    async (m) => {
      sent.push(m);
    },
    { intervalMs: 3_600_000, sysRoot: dir.path, gpuCount: 0 },
  );
  for (let step = 1; step <= 3; step++) {
    const sum = await reporter.allreduce(
      async () => {
        bytes += 100;
        return step;
      },
      () => bytes,
    );
    assert.equal(sum, step);
    reporter.stepDone(0.01 * step, 32, step);
  }
  await assert.rejects(
    reporter.allreduce(
      async () => {
        bytes += 7;
        throw new Error('deadline');
      },
      () => bytes,
    ),
    /deadline/,
  );
  assert.equal(sent.length, 0, 'nothing before the interval');
  await reporter.stop();
  assert.equal(sent.length, 1);
  const r = sent[0]!;
  assert.deepEqual(r.step_seconds, [0.01, 0.02, 0.03]);
  assert.equal(r.steps, 3);
  assert.equal(r.allreduce_bytes, 307, 'a failed all-reduce still counts the bytes it moved');
  assert.ok(r.allreduce_seconds! >= 0);
  assert.ok(r.samples_per_s! > 0);
  assert.equal(typeof JSON.parse(r.telemetry_json!), 'object');
  await reporter.stop();
  assert.equal(sent.length, 1, 'no steps since: nothing more');

  const failing = new ProgressReporter(
    async () => {
      throw new Error('coordinator gone');
    },
    { intervalMs: 3_600_000, sysRoot: dir.path },
  );
  failing.stepDone(0.1, 1, 1);
  await failing.stop();
});

test('worker progress - the interval sends while steps are taken, one report in flight at most', async (t) => {
  const dir = await tmpDir({ t });
  const sent: Array<Partial<MetricsReport>> = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const reporter = new ProgressReporter(
    async (m) => {
      sent.push(m);
      await gate;
    },
    { intervalMs: 20, sysRoot: dir.path },
  );
  reporter.stepDone(0.001, 1, 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(sent.length, 1, 'the first report is still in flight');
  reporter.stepDone(0.001, 1, 2);
  release();
  await reporter.stop();
  assert.deepEqual(
    sent.map((m) => m.steps),
    [1, 2],
  );
});

test('worker progress - extra fields (rejected messages) ride on the next report, and are sent by stop() even without a step', async (t) => {
  const dir = await tmpDir({ t });
  const sent: Array<Partial<MetricsReport>> = [];
  let pending: Partial<MetricsReport> = {};
  const reporter = new ProgressReporter(
    async (m) => {
      sent.push(m);
    },
    { intervalMs: 3_600_000, sysRoot: dir.path },
    () => {
      const f = pending;
      pending = {};
      return f;
    },
  );
  reporter.stepDone(0.01, 8, 1);
  pending = { rejected_messages: 4, rejected_subjects: ['bnn.r.1.rs.2.0.0'] };
  await reporter.stop();
  pending = { rejected_messages: 1, rejected_subjects: ['bnn.r.1.rs.3.0.0'] };
  await reporter.stop();
  await reporter.stop();
  assert.deepEqual(
    sent.map((m) => [m.steps, m.step_seconds?.length, m.rejected_messages, m.rejected_subjects]),
    [
      [1, 1, 4, ['bnn.r.1.rs.2.0.0']],
      [1, 0, 1, ['bnn.r.1.rs.3.0.0']],
    ],
  );
});
