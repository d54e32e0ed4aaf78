import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { snapshotHardware, type CommandRunner, type HardwareInfo, type SystemInformation } from '../src/telemetry/index.js';
import { REPO_ROOT } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';

type Graphics = Awaited<ReturnType<SystemInformation['graphics']>>;
type Controller = Graphics['controllers'][number];

const controller = (c: Partial<Controller>): Controller => ({ vendor: '', model: '', bus: '', vram: null, vramDynamic: false, ...c });

/** Canned systeminformation answers (a 2-socket Xeon with an ASPEED BMC and two H200s unless `graphics` says otherwise). */
function fakeSi(graphics: () => Promise<Graphics>): SystemInformation {
  return {
    cpu: async () => ({ manufacturer: 'Intel', brand: 'Xeon® Platinum 8480+', cores: 224, physicalCores: 112 }) as never,
    cpuFlags: async () => 'fpu sse4_2 popcnt avx avx2 fma avx512f avx512_vpopcntdq asimd',
    mem: async () => ({ total: 2 * 2 ** 40 }) as never,
    osInfo: async () => ({ platform: 'linux', kernel: '6.8.0-45-generic', arch: 'x64' }) as never,
    graphics,
  };
}

const H200 = (bus: string) =>
  controller({
    vendor: 'NVIDIA Corporation',
    model: 'GH100 [H200 SXM 141GB]',
    name: 'NVIDIA H200',
    busAddress: bus,
    driverVersion: '550.90.07',
    memoryTotal: 143771,
  });
const TWO_H200: Graphics = {
  controllers: [
    controller({ vendor: 'ASPEED Technology, Inc.', model: 'ASPEED Graphics Family', vram: 64 }),
    H200('18:00.0'),
    H200('2a:00.0'),
  ],
  displays: [],
};

const failingSmi: CommandRunner = async () => {
  throw Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
};

test('telemetry hardware - CPU, flags, memory and OS from systeminformation; the GPU selected among its NVIDIA controllers, nvidia-smi not asked', async () => {
  const calls: string[][] = [];
  const smi: CommandRunner = async (_cmd, args) => {
    calls.push([...args]);
    return '';
  };
  const hw = await snapshotHardware({ si: fakeSi(async () => TWO_H200), exec: smi, gpuIndex: 1 });
  assert.equal(hw.cpuModel, 'Intel Xeon® Platinum 8480+');
  assert.equal(hw.cpuCores, 112);
  assert.equal(hw.cpuThreads, 224);
  assert.equal(hw.memoryBytes, 2 * 2 ** 40);
  assert.equal(hw.os, 'linux 6.8.0-45-generic x64');
  if (os.arch() === 'x64') {
    assert.equal(hw.isaFlags.avx512_vpopcntdq, true);
    assert.equal(hw.isaFlags.avx512bw, false);
    assert.equal(hw.isaFlags.asimd, undefined, 'x86 flags only on x86');
  }
  assert.deepEqual(
    { model: hw.gpuModel, driver: hw.gpuDriver, memory: hw.gpuMemoryBytes, count: hw.gpuCount, index: hw.gpuIndex },
    { model: 'NVIDIA H200', driver: '550.90.07', memory: 143771 * 2 ** 20, count: 2, index: 1 },
    'the BMC VGA is no GPU; index 1 is the second H200',
  );
  assert.deepEqual(calls, [], 'systeminformation answered: no nvidia-smi call of our own');
  const first = await snapshotHardware({ si: fakeSi(async () => TWO_H200), exec: smi });
  assert.equal(first.gpuIndex, null, 'no --gpu: the first GPU described, no index recorded');
  assert.equal(first.gpuModel, 'NVIDIA H200');
  const past = await snapshotHardware({ si: fakeSi(async () => TWO_H200), exec: smi, gpuIndex: 5 });
  assert.deepEqual([past.gpuModel, past.gpuCount, past.gpuIndex], [null, 2, 5]);
});

test('telemetry hardware - no NVIDIA controller from systeminformation (no lspci, as in containers): nvidia-smi answers; a hung graphics() is cut off; nothing missing is fatal', async () => {
  const calls: string[][] = [];
  const smi: CommandRunner = async (_cmd, args) => {
    calls.push([...args]);
    return 'NVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB\nNVIDIA A100-SXM4-80GB, 535.104.05, 81920 MiB\n';
  };
  const none = fakeSi(async () => ({ controllers: [], displays: [] }));
  const hw = await snapshotHardware({ si: none, exec: smi, gpuIndex: 1 });
  assert.deepEqual(calls, [['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader']]);
  assert.deepEqual(
    [hw.gpuModel, hw.gpuDriver, hw.gpuMemoryBytes, hw.gpuCount, hw.gpuIndex],
    ['NVIDIA A100-SXM4-80GB', '535.104.05', 81920 * 2 ** 20, 2, 1],
  );

  const t0 = performance.now();
  const hung = await snapshotHardware({ si: fakeSi(() => new Promise<Graphics>(() => undefined)), exec: failingSmi, gpuTimeoutMs: 100 });
  assert.ok(performance.now() - t0 < 1000, 'the GPU query is cut off at gpuTimeoutMs');
  assert.deepEqual([hung.gpuModel, hung.gpuDriver, hung.gpuMemoryBytes, hung.gpuCount, hung.gpuIndex], [null, null, null, 0, null]);

  // every systeminformation call failing: node:os fills in
  const broken: SystemInformation = {
    cpu: () => Promise.reject(new Error('x')),
    cpuFlags: () => Promise.reject(new Error('x')),
    mem: () => Promise.reject(new Error('x')),
    osInfo: () => Promise.reject(new Error('x')),
    graphics: () => Promise.reject(new Error('x')),
  };
  const bare = await snapshotHardware({ si: broken, exec: failingSmi });
  assert.equal(bare.cpuThreads, os.cpus().length || 1);
  assert.equal(bare.memoryBytes, os.totalmem());
  assert.equal(bare.os, `${os.platform()} ${os.release()} ${os.arch()}`);
  assert.equal(bare.gpuCount, 0);
  assert.ok(Object.values(bare.isaFlags).every((v) => v === false));
});

test('telemetry hardware - the real systeminformation on this host: agrees with node:os and /proc/cpuinfo, fast; a fake lspci and nvidia-smi on PATH give the GPU through si.graphics()', async (t) => {
  const t0 = performance.now();
  const hw = await snapshotHardware();
  const ms = performance.now() - t0;
  t.diagnostic(`snapshot took ${ms.toFixed(0)} ms`);
  assert.ok(ms < 3000, `a worker registers with it: ${ms} ms`);
  assert.equal(hw.cpuThreads, os.cpus().length);
  assert.equal(hw.memoryBytes, os.totalmem());
  assert.ok(hw.cpuCores >= 1 && hw.cpuCores <= hw.cpuThreads);
  assert.notEqual(hw.cpuModel, 'unknown');
  assert.equal(hw.os, `${os.platform()} ${os.release()} ${os.arch()}`);
  if (existsSync('/proc/cpuinfo') && os.arch() === 'x64') {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    const flags = new Set(line?.split(':')[1]?.trim().split(/\s+/));
    for (const [name, present] of Object.entries(hw.isaFlags)) assert.equal(present, flags.has(name), name);
  }
  assert.equal(hw.nodeVersion, process.versions.node);
  assert.equal(hw.packageVersions['bnn-cluster'], '0.1.0');
  assert.equal(hw.packageVersions['@tensorflow/tfjs'], '4.22.0');

  // lspci lists an ASPEED BMC and two NVIDIA GPUs; nvidia-smi answers systeminformation's query by bus id
  const dir = await tmpDir({ t });
  writeFileSync(
    dir.join('lspci'),
    `#!/bin/sh
cat <<'EOF'
03:00.0 VGA compatible controller: ASPEED Technology, Inc. ASPEED Graphics Family (rev 52)
	Subsystem: ASPEED Technology, Inc. ASPEED Graphics Family

18:00.0 3D controller: NVIDIA Corporation GH100 [H200 SXM 141GB] (rev a1)
	Subsystem: NVIDIA Corporation Device 1992

2a:00.0 3D controller: NVIDIA Corporation GH100 [H200 SXM 141GB] (rev a1)
	Subsystem: NVIDIA Corporation Device 1992
EOF
`,
  );
  writeFileSync(
    dir.join('nvidia-smi'),
    `#!/bin/sh
case "$*" in
  *pci.sub_device_id*)
    echo "550.90.07, 0x199210DE, NVIDIA H200, 00000000:18:00.0, [N/A], 143771, 0, 143150, 0, 0, 30, [N/A], 75.00, 700.00, 345, 2619"
    echo "550.90.07, 0x199210DE, NVIDIA H200, 00000000:2A:00.0, [N/A], 143771, 0, 143150, 0, 0, 31, [N/A], 74.00, 700.00, 345, 2619" ;;
  *) exit 9 ;;
esac
`,
  );
  chmodSync(dir.join('lspci'), 0o755);
  chmodSync(dir.join('nvidia-smi'), 0o755);
  // a child process: systeminformation runs nvidia-smi with the environment it saw when it was loaded
  const script = `import { snapshotHardware } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'src/telemetry/index.ts')).href)};
process.stdout.write(JSON.stringify(await snapshotHardware({ gpuIndex: 1 })));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${dir.path}${delimiter}${process.env.PATH}` },
  });
  const gpu = JSON.parse(out) as HardwareInfo;
  assert.deepEqual(
    [gpu.gpuModel, gpu.gpuDriver, gpu.gpuMemoryBytes, gpu.gpuCount, gpu.gpuIndex],
    ['NVIDIA H200', '550.90.07', 143771 * 2 ** 20, 2, 1],
    'from si.graphics(): our own nvidia-smi query would have exited 9',
  );
});
