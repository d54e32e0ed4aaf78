import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tmpDir } from '../../test/helpers/tmp.js';
import { findCpuTempFile, HostSampler } from './host.js';
import type { HostTelemetry } from './types.js';

function writeTree(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

test('telemetry host - the CPU temperature comes from a known hwmon driver, else the x86_pkg_temp zone, else nowhere', async (t) => {
  const a = await tmpDir({ t });
  writeTree(a.path, {
    'sys/class/hwmon/hwmon0/name': 'acpitz\n',
    'sys/class/hwmon/hwmon0/temp1_input': '30000\n',
    'sys/class/hwmon/hwmon1/name': 'k10temp\n',
    'sys/class/hwmon/hwmon1/temp1_input': '54125\n',
  });
  assert.equal(findCpuTempFile(a.path), join(a.path, 'sys/class/hwmon/hwmon1/temp1_input'));
  const b = await tmpDir({ t });
  writeTree(b.path, {
    'sys/class/thermal/thermal_zone0/type': 'acpitz\n',
    'sys/class/thermal/thermal_zone0/temp': '30000\n',
    'sys/class/thermal/thermal_zone1/type': 'x86_pkg_temp\n',
    'sys/class/thermal/thermal_zone1/temp': '61000\n',
  });
  assert.equal(findCpuTempFile(b.path), join(b.path, 'sys/class/thermal/thermal_zone1/temp'));
  const c = await tmpDir({ t });
  assert.equal(findCpuTempFile(c.path), null);
});

test('telemetry host - a sample: CPU busy fraction, temperature from the tree, GPUs from nvidia-smi once it answered; no GPU, no query', async (t) => {
  const dir = await tmpDir({ t });
  writeTree(dir.path, { 'sys/class/hwmon/hwmon0/name': 'coretemp\n', 'sys/class/hwmon/hwmon0/temp1_input': '48500\n' });
  const calls: string[][] = [];
  const exec = async (command: string, args: readonly string[]) => {
    calls.push([command, ...args]);
    return '0, 50, 70, 200\n';
  };
  const sampler = new HostSampler({ gpuCount: 1, sysRoot: dir.path, exec });
  const first = await sampler.sample();
  assert.equal(first.cpuTempC, 48.5);
  assert.equal(first.cpuPowerW, undefined, 'no RAPL in the tree: unknown, not 0');
  await new Promise((r) => setImmediate(r));
  const second: HostTelemetry = await sampler.sample();
  assert.deepEqual(second.gpus, [{ index: 0, util: 0.5, tempC: 70, powerW: 200 }]);
  assert.deepEqual(
    calls,
    [['nvidia-smi', '--query-gpu=index,utilization.gpu,temperature.gpu,power.draw', '--format=csv,noheader,nounits']],
    'queried once: at most every 3 s',
  );
  if (second.cpuUtil !== undefined) assert.ok(second.cpuUtil >= 0 && second.cpuUtil <= 1);

  const none = new HostSampler({ gpuCount: 0, sysRoot: dir.path, exec });
  await none.sample();
  assert.equal(calls.length, 1);
  assert.equal((await none.sample()).gpus, undefined);
});
