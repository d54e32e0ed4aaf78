import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { test } from 'node:test';
import { parseCpuinfo, snapshotHardware, type CommandRunner } from '../src/telemetry/index.js';
import { tmpDir } from './helpers/tmp.js';

const CPUINFO = `processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t: 0
flags\t\t: fpu sse4_2 popcnt avx avx2 fma avx512f avx512_vpopcntdq

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t: 0
flags\t\t: fpu sse4_2 popcnt avx avx2 fma avx512f avx512_vpopcntdq

processor\t: 2
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t: 1
flags\t\t: fpu sse4_2 popcnt avx avx2 fma avx512f avx512_vpopcntdq
`;

test('telemetry hardware - /proc/cpuinfo: model, flags, logical and physical cores', () => {
  const info = parseCpuinfo(CPUINFO);
  assert.equal(info.model, 'Intel(R) Xeon(R) Platinum 8480+');
  assert.equal(info.processors, 3);
  assert.equal(info.physicalCores, 2, 'two hyperthreads of core 0 count once');
  assert.ok(info.flags.has('avx512_vpopcntdq') && info.flags.has('avx2') && !info.flags.has('avx512bw'));
  const arm = parseCpuinfo('processor\t: 0\nFeatures\t: fp asimd asimddp sve\n');
  assert.ok(arm.flags.has('sve') && arm.flags.has('asimd'));
  assert.deepEqual(parseCpuinfo(''), { model: undefined, flags: new Set(), processors: 0, physicalCores: 0 });
});

test('telemetry hardware - snapshot from a fake /proc and nvidia-smi; fast; nothing missing is fatal', async (t) => {
  const dir = await tmpDir({ t });
  mkdirSync(dir.join('proc'));
  writeFileSync(dir.join('proc', 'cpuinfo'), CPUINFO);
  const calls: string[][] = [];
  const smi: CommandRunner = async (_cmd, args) => {
    calls.push([...args]);
    return 'NVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB\n';
  };
  const t0 = performance.now();
  const hw = await snapshotHardware({ root: dir.path, exec: smi });
  assert.ok(performance.now() - t0 < 300, 'under 300 ms');
  assert.deepEqual(calls, [['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader']]);
  assert.equal(hw.gpuModel, 'NVIDIA A100-SXM4-40GB');
  assert.equal(hw.gpuDriver, '535.104.05');
  assert.equal(hw.gpuMemoryBytes, 40960 * 2 ** 20);
  assert.equal(hw.gpuCount, 1);
  assert.equal(hw.cpuCores, 2);
  assert.equal(hw.cpuThreads, os.cpus().length || 3);
  if (os.arch() === 'x64') {
    assert.equal(hw.isaFlags.avx512_vpopcntdq, true);
    assert.equal(hw.isaFlags.avx2, true);
    assert.equal(hw.isaFlags.avx512bw, false);
  }
  assert.equal(hw.memoryBytes, os.totalmem());
  assert.equal(hw.nodeVersion, process.versions.node);
  assert.equal(hw.packageVersions['bnn-cluster'], '0.1.0');
  assert.equal(hw.packageVersions['@tensorflow/tfjs'], '4.22.0');
  assert.ok(hw.packageVersions['better-sqlite3']);

  // No cpuinfo and no nvidia-smi: still a snapshot.
  const bare = await snapshotHardware({
    root: dir.join('nowhere'),
    exec: async () => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    },
  });
  assert.equal(bare.gpuModel, null);
  assert.equal(bare.gpuCount, 0);
  assert.ok(bare.cpuThreads >= 1 && bare.cpuCores >= 1);
  assert.ok(Object.values(bare.isaFlags).every((v) => v === false));
});
