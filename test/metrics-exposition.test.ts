import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { STEP_SECONDS_BUCKETS } from '../coordinator/metrics.js';
import { loadConfig } from '../src/config/index.js';
import type { MetricsReport } from '../src/rpc/index.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { coordinatorWithMetrics } from './helpers/coordinator.js';
import { tmpDir } from './helpers/tmp.js';

function report(m: Partial<MetricsReport> & Pick<MetricsReport, 'worker_id' | 'run_id' | 'rank'>): MetricsReport {
  return {
    generation: 1,
    epoch: 0,
    train_loss: 0,
    train_acc: 0,
    test_loss: -1,
    test_acc: -1,
    lr: 0,
    samples_per_s: 0,
    epoch_time_s: 0,
    done: false,
    error: '',
    steps: 0,
    step_seconds: [],
    allreduce_bytes: 0,
    allreduce_seconds: 0,
    telemetry_json: '',
    collective_error: '',
    missing_ranks: [],
    failed_step: 0,
    skipped_steps: 0,
    ...m,
  } as MetricsReport;
}

const lines = (text: string, prefix: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .sort();
const settle = () => new Promise((r) => setImmediate(r));

test('metrics - progress reports become exact histogram buckets, all-reduce counters and telemetry gauges; unknown telemetry is absent, not 0; promtool accepts it', async (t) => {
  const dir = await tmpDir({ t });
  const { coordinator, metrics } = coordinatorWithMetrics(t, dir.join('bnn.db'));
  const ids = ['gpu-host', 'cpu-host'].map((hostname, pid) => {
    const { worker_id } = coordinator.register({ hostname, hardware_json: '', threads: 1, backend: 'cpu', pid });
    coordinator.assignments(worker_id);
    return worker_id;
  });
  const config = await loadConfig(writeTinyConfig(dir.path));
  const { run_id: run } = coordinator.submit(JSON.stringify(config), 2, 'tiny.yaml');
  const [w0, w1] = ids as [string, string];

  coordinator.reportMetrics(
    report({
      worker_id: w0,
      run_id: run,
      rank: 0,
      steps: 3,
      samples_per_s: 1234.5,
      step_seconds: [0.002, 0.02, 0.3],
      allreduce_bytes: 1000,
      allreduce_seconds: 0.25,
      telemetry_json: JSON.stringify({
        cpuUtil: 0.5,
        cpuTempC: 61.5,
        cpuPowerW: 42,
        gpus: [
          { index: 0, util: 0.9, tempC: 70, powerW: 250 },
          { index: 1, util: 0.1 },
        ],
      }),
    }),
  );
  coordinator.reportMetrics(
    report({
      worker_id: w1,
      run_id: run,
      rank: 1,
      steps: 3,
      samples_per_s: 1000,
      step_seconds: [0.2],
      allreduce_bytes: 900,
      telemetry_json: 'not json',
    }),
  );
  coordinator.reportMetrics(
    report({
      worker_id: w0,
      run_id: run,
      rank: 0,
      steps: 5,
      samples_per_s: 1300,
      step_seconds: [150],
      allreduce_bytes: 500,
      allreduce_seconds: 0.5,
    }),
  );
  await settle();
  const text = await metrics.render();

  const buckets = lines(text, `bnn_step_duration_seconds_bucket{`).map((l) => [l.match(/le="([^"]+)"/)![1], Number(l.split(' ').at(-1))]);
  const expected = [...STEP_SECONDS_BUCKETS.map(String), '+Inf'].map((le) => {
    const bound = le === '+Inf' ? Infinity : Number(le);
    return [le, [0.002, 0.02, 0.3, 0.2, 150].filter((s) => s <= bound).length];
  });
  assert.deepEqual(new Map(buckets as Array<[string, number]>), new Map(expected as Array<[string, number]>));
  assert.match(text, new RegExp(`^bnn_step_duration_seconds_count\\{run="${run}"\\} 5$`, 'm'));
  assert.match(text, new RegExp(`^bnn_step_duration_seconds_sum\\{run="${run}"\\} 150\\.522$`, 'm'));

  assert.deepEqual(
    lines(text, 'bnn_allreduce_bytes_total{'),
    [
      `bnn_allreduce_bytes_total{run="${run}",worker="${w0}",hostname="gpu-host"} 1500`,
      `bnn_allreduce_bytes_total{run="${run}",worker="${w1}",hostname="cpu-host"} 900`,
    ].sort(),
  );
  assert.ok(
    lines(text, 'bnn_allreduce_seconds_total{').includes(
      `bnn_allreduce_seconds_total{run="${run}",worker="${w0}",hostname="gpu-host"} 0.75`,
    ),
  );

  // The latest report wins for gauges; the second worker's unreadable telemetry is unknown.
  assert.deepEqual(
    lines(text, 'bnn_worker_step{'),
    [`bnn_worker_step{worker="${w0}",hostname="gpu-host"} 5`, `bnn_worker_step{worker="${w1}",hostname="cpu-host"} 3`].sort(),
  );
  assert.deepEqual(lines(text, 'bnn_worker_cpu_utilization_ratio{'), [], 'the last report of w0 carried no telemetry');
  coordinator.reportMetrics(
    report({
      worker_id: w0,
      run_id: run,
      rank: 0,
      steps: 6,
      telemetry_json: JSON.stringify({
        cpuUtil: 0.5,
        cpuTempC: 61.5,
        cpuPowerW: 42,
        gpus: [
          { index: 0, util: 0.9, tempC: 70, powerW: 250 },
          { index: 1, util: 0.1 },
        ],
      }),
    }),
  );
  await settle();
  const withGpus = await metrics.render();
  assert.deepEqual(lines(withGpus, 'bnn_worker_cpu_'), [
    `bnn_worker_cpu_power_watts{worker="${w0}",hostname="gpu-host"} 42`,
    `bnn_worker_cpu_temperature_celsius{worker="${w0}",hostname="gpu-host"} 61.5`,
    `bnn_worker_cpu_utilization_ratio{worker="${w0}",hostname="gpu-host"} 0.5`,
  ]);
  assert.deepEqual(lines(withGpus, 'bnn_worker_gpu_'), [
    `bnn_worker_gpu_power_watts{worker="${w0}",hostname="gpu-host",gpu="0"} 250`,
    `bnn_worker_gpu_temperature_celsius{worker="${w0}",hostname="gpu-host",gpu="0"} 70`,
    `bnn_worker_gpu_utilization_ratio{worker="${w0}",hostname="gpu-host",gpu="0"} 0.9`,
    `bnn_worker_gpu_utilization_ratio{worker="${w0}",hostname="gpu-host",gpu="1"} 0.1`,
  ]);
  assert.match(
    withGpus,
    new RegExp(`^bnn_worker_info\\{worker="${w1}",hostname="cpu-host",backend="cpu",threads="1",run="${run}",rank="1"\\} 1$`, 'm'),
  );
  assert.match(withGpus, /^bnn_runs\{status="RUNNING"\} 1$/m);

  const lint = spawnSync('promtool', ['check', 'metrics'], { input: withGpus, encoding: 'utf8' });
  assert.equal(lint.error, undefined, 'promtool runs (apt-get install -y prometheus)');
  assert.deepEqual([lint.status, `${lint.stdout}${lint.stderr}`], [0, '']);

  // A worker's last report and a finished run leave the per-run gauges; counters stay.
  coordinator.reportMetrics(report({ worker_id: w1, run_id: run, rank: 1, done: true, steps: 6 }));
  coordinator.reportMetrics(report({ worker_id: w0, run_id: run, rank: 0, done: true, steps: 6 }));
  await settle();
  const done = await metrics.render();
  assert.match(done, /^bnn_runs\{status="COMPLETED"\} 1$/m);
  assert.doesNotMatch(done, /^bnn_run_generation\{/m);
  assert.deepEqual(lines(done, 'bnn_worker_step{'), [], 'idle workers report no step');
  assert.equal(lines(done, 'bnn_allreduce_bytes_total{').length, 2);
});
