import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CpuEstimateProbe,
  DEFAULT_WATTS_PER_CORE,
  EnergyMeter,
  findNvml,
  parseEnergyMeterOptions,
  POWER_QUERY,
  type CommandRunner,
} from '../src/telemetry/index.js';
import { tmpDir } from './helpers/tmp.js';

/** A clock the test moves by hand. */
function clock() {
  let ms = 0;
  return {
    nowMs: () => ms,
    advance: (s: number) => {
      ms += s * 1000;
    },
  };
}

/** nvidia-smi stand-in answering power queries with the watts the test sets. */
function fakeSmi(initial: number[]) {
  const state = { watts: initial, fail: false, calls: 0 };
  const exec: CommandRunner = async (_cmd, args) => {
    state.calls++;
    assert.deepEqual(args, POWER_QUERY);
    if (state.fail) throw Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
    return state.watts.map((w) => `${w.toFixed(2)}\n`).join('');
  };
  return { state, exec };
}

const noSmi: CommandRunner = async () => {
  throw Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
};

test('telemetry estimate - CPU seconds × watts per core, labelled estimate', async () => {
  let cpuUs = 1_000_000;
  const probe = new CpuEstimateProbe({ wattsPerCore: 10, cpuUsage: () => ({ user: cpuUs * 0.75, system: cpuUs * 0.25 }) });
  await probe.reset(0);
  cpuUs += 3_000_000; // 3 core-seconds over 2 s of wall time: 1.5 cores busy
  const r = await probe.take(2_000);
  assert.equal(r.source, 'estimate');
  assert.ok(Math.abs(r.joules - 30) < 1e-9);
  assert.ok(Math.abs(r.watts! - 15) < 1e-9);
  assert.equal(r.detail.wattsPerCore, 10);
  assert.equal(r.detail.cpuSeconds, 3);
  assert.match(String(r.detail.method), /CPU time × watts per core/);
  assert.equal(DEFAULT_WATTS_PER_CORE, 15);
  assert.throws(() => new CpuEstimateProbe({ wattsPerCore: 0 }), /wattsPerCore must be a positive number/);
});

test('telemetry meter - with neither nvml nor rapl it uses the estimate and says so', async (t) => {
  const dir = await tmpDir({ t });
  const c = clock();
  let cpuUs = 0;
  const meter = new EnergyMeter(
    { raplRoot: dir.path, wattsPerCore: 15 },
    { nowMs: c.nowMs, exec: noSmi, cpuUsage: () => ({ user: cpuUs, system: 0 }) },
  );
  await meter.start();
  assert.deepEqual(meter.sources, ['estimate']);
  assert.equal(meter.label, 'estimate');
  assert.deepEqual(meter.unavailable, [
    { source: 'nvml', reason: 'nvidia-smi not found' },
    { source: 'rapl', reason: `no ${join(dir.path, 'sys/class/powercap')} (no RAPL powercap driver)` },
  ]);
  cpuUs += 2_000_000;
  c.advance(4);
  const s = await meter.sample();
  assert.deepEqual(
    s.readings.map((r) => r.source),
    ['estimate'],
  );
  assert.ok(Math.abs(s.joules - 30) < 1e-9);
  assert.equal(s.readings[0]!.intervalS, 4);
  cpuUs += 1_000_000;
  c.advance(1);
  const last = await meter.stop();
  assert.ok(Math.abs(last.joules - 15) < 1e-9, 'stop returns the energy since the previous sample');
  assert.deepEqual((await meter.stop()).readings, [], 'stop is idempotent');
  await assert.rejects(meter.sample(), /meter is stopped/);
});

test('telemetry meter - nvml and rapl together; GPU power integrated by the trapezoid rule', async (t) => {
  const dir = await tmpDir({ t });
  const pkg = join(dir.path, 'sys/class/powercap/intel-rapl:0');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'name'), 'package-0\n');
  writeFileSync(join(pkg, 'max_energy_range_uj'), '262143328850\n');
  writeFileSync(join(pkg, 'energy_uj'), '100\n');
  const c = clock();
  const smi = fakeSmi([100, 50]); // two GPUs
  const meter = new EnergyMeter({ raplRoot: dir.path }, { nowMs: c.nowMs, exec: smi.exec });
  await meter.start();
  assert.equal(meter.label, 'nvml+rapl');
  assert.deepEqual(meter.unavailable, []);

  smi.state.watts = [200, 50]; // total 150 W → 250 W over 10 s: mean 200 W
  writeFileSync(join(pkg, 'energy_uj'), `${100 + 40_000_000}\n`); // 40 J
  c.advance(10);
  const s = await meter.sample();
  const nvml = s.readings.find((r) => r.source === 'nvml')!;
  const rapl = s.readings.find((r) => r.source === 'rapl')!;
  assert.equal(nvml.joules, 2000);
  assert.equal(nvml.watts, 200);
  assert.equal(nvml.detail.gpus, 2);
  assert.ok(Math.abs(rapl.joules - 40) < 1e-9);
  assert.ok(Math.abs(s.joules - 2040) < 1e-9);

  // A failed reading repeats the last power, and is counted.
  smi.state.fail = true;
  c.advance(2);
  const s2 = await meter.sample();
  const nvml2 = s2.readings.find((r) => r.source === 'nvml')!;
  assert.equal(nvml2.joules, 500);
  assert.equal(nvml2.detail.failedReadings, 1);
  await meter.stop();
});

test('telemetry meter - interval polling folds readings in between samples and stops with the meter', async (t) => {
  const dir = await tmpDir({ t });
  const smi = fakeSmi([10]);
  const meter = new EnergyMeter({ raplRoot: dir.path, intervalMs: 5, sources: ['nvml', 'rapl'] }, { exec: smi.exec });
  await meter.start();
  await new Promise((r) => setTimeout(r, 60));
  const s = await meter.sample();
  assert.ok(smi.state.calls >= 4, `polled ${smi.state.calls} times`);
  assert.ok((s.readings[0]!.detail.readings as number) >= 3);
  await meter.stop();
  const calls = smi.state.calls;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(smi.state.calls, calls, 'no polling after stop');
});

test('telemetry meter - options validated before any I/O; sources can be restricted', async (t) => {
  assert.throws(() => parseEnergyMeterOptions({ wattsPerCore: -1 }), /energy meter option wattsPerCore/);
  assert.throws(() => parseEnergyMeterOptions({ intervalMs: 1.5 }), /energy meter option intervalMs/);
  assert.throws(() => parseEnergyMeterOptions({ sources: ['joulemeter' as never] }), /energy meter option sources/);
  const dir = await tmpDir({ t });
  const smi = fakeSmi([10]);
  const forced = new EnergyMeter({ raplRoot: dir.path, sources: ['estimate'] }, { exec: smi.exec });
  await forced.start();
  assert.equal(forced.label, 'estimate');
  assert.equal(smi.state.calls, 0, 'nvidia-smi not even asked');
  await forced.stop();
  const strict = new EnergyMeter({ raplRoot: dir.path, sources: ['rapl'] });
  await assert.rejects(strict.start(), /no energy source available: rapl: no /);
  // nvidia-smi answering "[N/A]" for power means no GPU energy.
  const na = await findNvml({ exec: async () => '[N/A]\n' });
  assert.equal(na.available, false);
  assert.match((na as { reason: string }).reason, /no power reading/);
});

test('telemetry - the meter picks its sources from the same list, in the same order, as the store accepts them', async () => {
  const { MEASURED_ENERGY_SOURCES } = await import('../src/telemetry/types.js');
  const { ENERGY_SOURCES } = await import('../src/store/schema.js');
  assert.deepEqual([...MEASURED_ENERGY_SOURCES], [...ENERGY_SOURCES]);
});
