import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import si from 'systeminformation';
import { packageRoot, packageVersion } from '../config/package-info.js';
import type { CommandRunner } from './exec.js';
import { NO_GPU, readGpuInfo, type GpuColumns } from './nvidia-smi.js';
import type { HardwareInfo } from './types.js';

export interface HardwareOptions {
  /** nvidia-smi, by name on PATH or by path (the fallback when systeminformation finds no NVIDIA GPU). */
  nvidiaSmi?: string;
  /** Longest the GPU query may take; past it the GPU columns stay empty. Default 3000. */
  gpuTimeoutMs?: number;
  /** Runs nvidia-smi for the fallback; tests inject canned output. */
  exec?: CommandRunner;
  /** The GPU this process was given (`bnn worker --gpu`, in nvidia-smi's order): its model, driver and memory are recorded. */
  gpuIndex?: number;
  /** The systeminformation calls used; tests inject canned answers. Default: the package itself. */
  si?: SystemInformation;
}

/** The part of systeminformation a snapshot uses. */
export type SystemInformation = Pick<typeof si, 'cpu' | 'cpuFlags' | 'mem' | 'osInfo' | 'graphics'>;

/** ISA features recorded (true/false each) from systeminformation's `cpuFlags()`, by architecture. */
export const ISA_FLAGS: Record<string, readonly string[]> = {
  x86: [
    'sse4_2',
    'popcnt',
    'avx',
    'avx2',
    'fma',
    'bmi2',
    'avx512f',
    'avx512bw',
    'avx512vl',
    'avx512_vnni',
    'avx512_vpopcntdq',
    'avx512_bitalg',
  ],
  arm: ['asimd', 'asimddp', 'sve', 'sve2'],
};

/** Packages whose versions can change results or speed; the ones installed are recorded. */
export const RECORDED_PACKAGES = [
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'better-sqlite3',
  'drizzle-orm',
] as const;

/** Longest one of systeminformation's CPU, memory and OS queries may take (they read files and run lscpu/dmidecode). */
const HOST_QUERY_TIMEOUT_MS = 5000;

/**
 * This host's CPU, ISA flags, memory, GPU, OS, Node and package versions, from systeminformation
 * (`cpu`, `cpuFlags`, `mem`, `osInfo`, `graphics`). Never throws: what cannot be read is left
 * empty (`unknown`, null, false) or taken from `node:os`.
 *
 * GPU: the NVIDIA controllers of `si.graphics()` (on Linux it lists PCI controllers with lspci
 * and merges nvidia-smi's name, driver and memory into them, in PCI bus order, nvidia-smi's
 * order); `gpuIndex` (default 0) picks the one recorded. Where that finds none (no lspci, as in
 * most containers) nvidia-smi is asked directly, the one thing only it answers there.
 */
export async function snapshotHardware(options: HardwareOptions = {}): Promise<HardwareInfo> {
  const sys = options.si ?? si;
  const gpu = readGpus(sys, options);
  // each call is bounded: what does not answer in time is taken from node:os (or left out)
  const [cpu, flags, mem, osInfo] = await Promise.all([
    withTimeout(sys.cpu(), HOST_QUERY_TIMEOUT_MS).catch(() => null),
    withTimeout(sys.cpuFlags(), HOST_QUERY_TIMEOUT_MS).catch(() => ''),
    withTimeout(sys.mem(), HOST_QUERY_TIMEOUT_MS).catch(() => null),
    withTimeout(sys.osInfo(), HOST_QUERY_TIMEOUT_MS).catch(() => null),
  ]);
  const threads = cpu?.cores || safe(() => os.cpus().length, 0) || 1;
  const model = [cpu?.manufacturer, cpu?.brand].filter((x) => x && x.trim() !== '').join(' ');
  return {
    cpuModel: model || safe(() => os.cpus()[0]?.model?.trim(), undefined) || 'unknown',
    cpuCores: cpu?.physicalCores || threads,
    cpuThreads: threads,
    isaFlags: isaFlags(new Set(flags.split(/\s+/).filter(Boolean))),
    memoryBytes: mem?.total || safe(() => os.totalmem(), 0),
    ...(await gpu),
    os: `${osInfo?.platform || os.platform()} ${osInfo?.kernel || safe(() => os.release(), '?')} ${osInfo?.arch || os.arch()}`,
    nodeVersion: process.versions.node,
    packageVersions: packageVersions(),
  };
}

function isaFlags(present: ReadonlySet<string>): Record<string, boolean> {
  const arch = os.arch();
  const names =
    arch === 'x64' || arch === 'ia32' ? ISA_FLAGS.x86! : arch.startsWith('arm') ? ISA_FLAGS.arm! : [...ISA_FLAGS.x86!, ...ISA_FLAGS.arm!];
  return Object.fromEntries(names.map((n) => [n, present.has(n)]));
}

/** GPU columns: systeminformation's NVIDIA controllers, else nvidia-smi; none when neither answers in time. */
async function readGpus(sys: SystemInformation, options: HardwareOptions): Promise<GpuColumns & Pick<HardwareInfo, 'gpuIndex'>> {
  const index = options.gpuIndex ?? 0;
  const timeoutMs = options.gpuTimeoutMs ?? 3000;
  const selected = { gpuIndex: options.gpuIndex ?? null };
  const fromSi = await withTimeout(sys.graphics(), timeoutMs).catch(() => null);
  const nvidia = (fromSi?.controllers ?? []).filter((c) => /nvidia/i.test(`${c.vendor} ${c.name ?? ''} ${c.model}`));
  if (nvidia.length > 0) {
    const c = nvidia[index];
    if (!c) return { ...NO_GPU, gpuCount: nvidia.length, ...selected };
    return {
      gpuModel: c.name || c.model || null,
      gpuDriver: c.driverVersion || null,
      // memoryTotal comes from nvidia-smi, in MiB; lspci's vram alone (a BAR size) is not the GPU's memory
      gpuMemoryBytes: c.memoryTotal ? Math.round(c.memoryTotal * 2 ** 20) : null,
      gpuCount: nvidia.length,
      ...selected,
    };
  }
  try {
    return { ...(await readGpuInfo({ command: options.nvidiaSmi, timeoutMs, exec: options.exec }, index)), ...selected };
  } catch {
    return { ...NO_GPU, ...selected };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function packageVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  const root = safe(() => packageRoot(), undefined);
  versions['bnn-cluster'] = safe(() => packageVersion(), 'unknown');
  if (root === undefined) return versions;
  for (const name of RECORDED_PACKAGES) {
    const file = join(root, 'node_modules', name, 'package.json');
    if (!existsSync(file)) continue;
    const v = safe(() => (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version, undefined);
    if (typeof v === 'string') versions[name] = v;
  }
  return versions;
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}
