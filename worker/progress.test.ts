import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { MetricsReport } from '../src/rpc/index.js';
import { tmpDir } from '../test/helpers/tmp.js';
import { findCpuTempFile, GPU_QUERY, HostSampler, parseGpuQuery, ProgressReporter, type HostTelemetry } from './progress.js';

function writeTree(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

test('worker progress - nvidia-smi CSV: utilisation as a fraction, [N/A] fields left out', () => {
  assert.deepEqual(parseGpuQuery('0, 87, 65, 250.12\n1, [N/A], 40, [N/A]\n'), [
    { index: 0, util: 0.87, tempC: 65, powerW: 250.12 },
    { index: 1, tempC: 40 },
  ]);
  assert.deepEqual(parseGpuQuery(''), []);
});

test('worker progress - the CPU temperature comes from a known hwmon driver, else the x86_pkg_temp zone, else nowhere', async (t) => {
  const a = await tmpDir({ t });
  writeTree(a.path, {
    'sys/class/hwmon/hwmon0/name': 'acpitz\n', 'sys/class/hwmon/hwmon0/temp1_input': '30000\n',
    'sys/class/hwmon/hwmon1/name': 'k10temp\n', 'sys/class/hwmon/hwmon1/temp1_input': '54125\n',
  });
  assert.equal(findCpuTempFile(a.path), join(a.path, 'sys/class/hwmon/hwmon1/temp1_input'));
  const b = await tmpDir({ t });
  writeTree(b.path, {
    'sys/class/thermal/thermal_zone0/type': 'acpitz\n', 'sys/class/thermal/thermal_zone0/temp': '30000\n',
    'sys/class/thermal/thermal_zone1/type': 'x86_pkg_temp\n', 'sys/class/thermal/thermal_zone1/temp': '61000\n',
  });
  assert.equal(findCpuTempFile(b.path), join(b.path, 'sys/class/thermal/thermal_zone1/temp'));
  const c = await tmpDir({ t });
  assert.equal(findCpuTempFile(c.path), null);
});

test('worker progress - host telemetry: CPU busy fraction, temperature from the tree, GPUs from nvidia-smi once it answered; no GPU, no query', async (t) => {
  const dir = await tmpDir({ t });
  writeTree(dir.path, { 'sys/class/hwmon/hwmon0/name': 'coretemp\n', 'sys/class/hwmon/hwmon0/temp1_input': '48500\n' });
  const calls: string[][] = [];
  const exec = async (command: string, args: readonly string[]) => {
    calls.push([command, ...args]);
    return '0, 50, 70, 200\n';
  };
  const sampler = new HostSampler({ intervalMs: 1000, idleIntervalMs: 5000, gpuCount: 1, sysRoot: dir.path, exec });
  const first = await sampler.sample();
  assert.equal(first.cpuTempC, 48.5);
  assert.equal(first.cpuPowerW, undefined, 'no RAPL in the tree: unknown, not 0');
  await new Promise((r) => setImmediate(r));
  const second: HostTelemetry = await sampler.sample();
  assert.deepEqual(second.gpus, [{ index: 0, util: 0.5, tempC: 70, powerW: 200 }]);
  assert.deepEqual(calls, [['nvidia-smi', ...GPU_QUERY]], 'queried once: at most every 3 s');
  if (second.cpuUtil !== undefined) assert.ok(second.cpuUtil >= 0 && second.cpuUtil <= 1);

  const none = new HostSampler({ intervalMs: 1000, idleIntervalMs: 5000, gpuCount: 0, sysRoot: dir.path, exec });
  await none.sample();
  assert.equal(calls.length, 1);
  assert.equal((await none.sample()).gpus, undefined);
});

test('worker progress - steps and all-reduce traffic are batched into one report; stop() sends the rest once; a failed send never throws', async (t) => {
  const dir = await tmpDir({ t });
  const sent: Array<Partial<MetricsReport>> = [];
  let bytes = 0;
  const reporter = new ProgressReporter(async (m) => { sent.push(m); }, { intervalMs: 3_600_000, sysRoot: dir.path, gpuCount: 0 });
  for (let step = 1; step <= 3; step++) {
    const sum = await reporter.allreduce(async () => { bytes += 100; return step; }, () => bytes);
    assert.equal(sum, step);
    reporter.stepDone(0.01 * step, 32, step);
  }
  await assert.rejects(reporter.allreduce(async () => { bytes += 7; throw new Error('deadline'); }, () => bytes), /deadline/);
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

  const failing = new ProgressReporter(async () => { throw new Error('coordinator gone'); }, { intervalMs: 3_600_000, sysRoot: dir.path });
  failing.stepDone(0.1, 1, 1);
  await failing.stop();
});

test('worker progress - the interval sends while steps are taken, one report in flight at most', async (t) => {
  const dir = await tmpDir({ t });
  const sent: Array<Partial<MetricsReport>> = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const reporter = new ProgressReporter(async (m) => { sent.push(m); await gate; }, { intervalMs: 20, sysRoot: dir.path });
  reporter.stepDone(0.001, 1, 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(sent.length, 1, 'the first report is still in flight');
  reporter.stepDone(0.001, 1, 2);
  release();
  await reporter.stop();
  assert.deepEqual(sent.map((m) => m.steps), [1, 2]);
});
