import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { counterDeltaUj, EnergyMeter, findRaplPackages, POWERCAP_DIR, RaplProbe } from '../src/telemetry/index.js';
import { tmpDir } from './helpers/tmp.js';

const MAX_UJ = 262143328850;

/** A fake `<root>/sys/class/powercap` tree, written by the test. */
function fakeSysfs(root: string) {
  const base = join(root, POWERCAP_DIR);
  mkdirSync(base, { recursive: true });
  return {
    domain(id: string, name: string, energyUj: number, maxUj = MAX_UJ) {
      const dir = join(base, id);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'name'), `${name}\n`);
      writeFileSync(join(dir, 'max_energy_range_uj'), `${maxUj}\n`);
      writeFileSync(join(dir, 'energy_uj'), `${energyUj}\n`);
      return dir;
    },
    set(id: string, energyUj: number) {
      writeFileSync(join(base, id, 'energy_uj'), `${energyUj}\n`);
    },
  };
}

test('telemetry rapl - counter delta handles one wraparound at max_energy_range_uj', () => {
  assert.equal(counterDeltaUj(1_000, 4_000, MAX_UJ), 3_000);
  assert.equal(counterDeltaUj(262143000000, 500000, MAX_UJ), 328850 + 500000);
  assert.equal(counterDeltaUj(MAX_UJ, 0, MAX_UJ), 0);
  assert.equal(counterDeltaUj(7, 7, MAX_UJ), 0);
});

test('telemetry rapl - packages only (no subdomains, no psys), joules across a wraparound, two packages', async (t) => {
  const dir = await tmpDir({ t });
  const fs = fakeSysfs(dir.path);
  fs.domain('intel-rapl:0', 'package-0', 262143000000);
  fs.domain('intel-rapl:0:0', 'core', 99_000_000_000);
  fs.domain('intel-rapl:0:1', 'dram', 5_000_000);
  fs.domain('intel-rapl:1', 'package-1', 1_000);
  fs.domain('intel-rapl:2', 'psys', 123);
  fs.domain('intel-rapl-mmio:0', 'package-0', 456); // the same package through MMIO: counted once, via MSR

  const found = findRaplPackages({ root: dir.path });
  assert.ok(found.available, JSON.stringify(found));
  assert.deepEqual(
    found.domains.map((d) => [d.id, d.name, d.maxEnergyRangeUj]),
    [
      ['intel-rapl:0', 'package-0', MAX_UJ],
      ['intel-rapl:1', 'package-1', MAX_UJ],
    ],
  );

  const probe = new RaplProbe(found.domains);
  await probe.reset(0);
  fs.set('intel-rapl:0', 500000); // wrapped: 328850 µJ to the top, then 500000 µJ
  fs.set('intel-rapl:1', 3_001_000); // 3 J
  fs.set('intel-rapl:0:0', 0); // a subdomain wrapping must not matter
  const r = await probe.take(2_000);
  assert.equal(r.source, 'rapl');
  assert.ok(Math.abs(r.joules - (0.82885 + 3)) < 1e-9, String(r.joules));
  assert.ok(Math.abs(r.watts! - r.joules / 2) < 1e-9);
  assert.equal(r.intervalS, 2);
  assert.deepEqual(Object.keys(r.detail.packages as object), ['package-0', 'package-1']);
  assert.ok(Math.abs((r.detail.packages as Record<string, number>)['package-0']! - 0.82885) < 1e-9);

  // Polls between samples fold in each wrap: two wraps of package-0 over one sample.
  fs.set('intel-rapl:0', MAX_UJ - 1_000_000);
  await probe.poll(3_000); // +(MAX - 1e6 - 500000) µJ
  fs.set('intel-rapl:0', 2_000_000);
  await probe.poll(4_000); // +(1e6 + 2e6) µJ
  const r2 = await probe.take(5_000);
  const expected = (MAX_UJ - 1_000_000 - 500_000 + 3_000_000) / 1e6;
  assert.ok(Math.abs(r2.joules - expected) < 1e-6, `${r2.joules} vs ${expected}`);
  // A sample right after shows nothing new.
  assert.equal((await probe.take(6_000)).joules, 0);
});

test('telemetry rapl - amd naming is found too', async (t) => {
  const dir = await tmpDir({ t });
  const fs = fakeSysfs(dir.path);
  fs.domain('amd-rapl:0', 'package-0', 10);
  const found = findRaplPackages({ root: dir.path });
  assert.ok(found.available);
  assert.deepEqual(
    found.domains.map((d) => d.id),
    ['amd-rapl:0'],
  );
});

test('telemetry rapl - missing or unreadable counters make RAPL unavailable, with the reason', async (t) => {
  const dir = await tmpDir({ t });
  const none = findRaplPackages({ root: dir.join('nothing') });
  assert.equal(none.available, false);
  assert.match((none as { reason: string }).reason, /no .*sys\/class\/powercap \(no RAPL powercap driver\)/);

  const fs = fakeSysfs(dir.path);
  const empty = findRaplPackages({ root: dir.path });
  assert.match((empty as { reason: string }).reason, /no CPU package domains/);

  const pkg = fs.domain('intel-rapl:0', 'package-0', 10);
  // energy_uj is root-only on Linux >= 5.10; root itself cannot be locked out by chmod, so inject EACCES.
  const denied = findRaplPackages({
    root: dir.path,
    readText: (p) => {
      if (p.endsWith('energy_uj')) throw Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' });
      return readFileSync(p, 'utf8');
    },
  });
  assert.equal(denied.available, false);
  assert.match((denied as { reason: string }).reason, /permission denied reading .*intel-rapl:0\/energy_uj/);

  // max_energy_range_uj missing: wraparound could not be handled, so not used.
  rmSync(join(pkg, 'max_energy_range_uj'));
  const noMax = findRaplPackages({ root: dir.path });
  assert.equal(noMax.available, false);
  assert.match((noMax as { reason: string }).reason, /cannot read .*intel-rapl:0/);

  // energy_uj that is not a file (or not a number) is unreadable too.
  writeFileSync(join(pkg, 'max_energy_range_uj'), `${MAX_UJ}\n`);
  rmSync(join(pkg, 'energy_uj'));
  mkdirSync(join(pkg, 'energy_uj'));
  assert.equal(findRaplPackages({ root: dir.path }).available, false);

  // The meter falls back to the estimate and says why RAPL was skipped.
  const meter = new EnergyMeter({ raplRoot: dir.path, nvidiaSmi: dir.join('no-nvidia-smi') });
  await meter.start();
  assert.equal(meter.label, 'estimate');
  assert.deepEqual(
    meter.unavailable.map((u) => u.source),
    ['nvml', 'rapl'],
  );
  assert.match(meter.unavailable[1]!.reason, /cannot read/);
  await meter.stop();
});
