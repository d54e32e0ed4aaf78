import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { packageRoot, packageVersion } from '../config/package-info.js';
import type { CommandRunner } from './exec.js';
import { NO_GPU, readGpuInfo, type GpuColumns } from './nvidia-smi.js';
import type { HardwareInfo } from './types.js';

export interface HardwareOptions {
  /** Filesystem root holding `proc/cpuinfo` (tests point it at a fake tree). */
  root?: string;
  /** nvidia-smi, by name on PATH or by path. */
  nvidiaSmi?: string;
  /** Longest the GPU query may take; past it the GPU columns stay empty. */
  gpuTimeoutMs?: number;
  /** Runs the command; tests inject canned output. */
  exec?: CommandRunner;
}

/** ISA features recorded (true/false each) from /proc/cpuinfo, by architecture. */
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

/**
 * This host's CPU, ISA flags, memory, GPU (when nvidia-smi answers), OS, Node and package
 * versions. Never throws: what cannot be read is left empty (`unknown`, null, false).
 */
export async function snapshotHardware(options: HardwareOptions = {}): Promise<HardwareInfo> {
  const gpu = readGpus(options);
  const cpuinfo = readCpuinfo(options.root ?? '/');
  const cpus = safe(() => os.cpus(), []);
  const threads = cpus.length || cpuinfo.processors || 1;
  return {
    cpuModel: cpus[0]?.model?.trim() || cpuinfo.model || 'unknown',
    cpuCores: cpuinfo.physicalCores || threads,
    cpuThreads: threads,
    isaFlags: isaFlags(cpuinfo.flags),
    memoryBytes: safe(() => os.totalmem(), 0),
    ...(await gpu),
    os: `${os.platform()} ${safe(() => os.release(), '?')} ${os.arch()}`,
    nodeVersion: process.versions.node,
    packageVersions: packageVersions(),
  };
}

interface Cpuinfo {
  model: string | undefined;
  flags: Set<string>;
  processors: number;
  /** Distinct (physical id, core id) pairs; 0 when the file does not say. */
  physicalCores: number;
}

/** Parses /proc/cpuinfo (x86 `flags`, arm `Features`); an unreadable file gives empty values. */
export function parseCpuinfo(text: string): Cpuinfo {
  let model: string | undefined;
  let flags = new Set<string>();
  let processors = 0;
  const cores = new Set<string>();
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of block.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) fields.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    if (fields.has('processor')) processors++;
    model ??= fields.get('model name');
    const f = fields.get('flags') ?? fields.get('features');
    if (f !== undefined && flags.size === 0) flags = new Set(f.split(/\s+/));
    const core = fields.get('core id');
    if (core !== undefined) cores.add(`${fields.get('physical id') ?? '0'}/${core}`);
  }
  return { model, flags, processors, physicalCores: cores.size };
}

function readCpuinfo(root: string): Cpuinfo {
  return parseCpuinfo(safe(() => readFileSync(join(root, 'proc', 'cpuinfo'), 'utf8'), ''));
}

function isaFlags(present: ReadonlySet<string>): Record<string, boolean> {
  const arch = os.arch();
  const names =
    arch === 'x64' || arch === 'ia32' ? ISA_FLAGS.x86! : arch.startsWith('arm') ? ISA_FLAGS.arm! : [...ISA_FLAGS.x86!, ...ISA_FLAGS.arm!];
  return Object.fromEntries(names.map((n) => [n, present.has(n)]));
}

/** GPU columns from nvidia-smi; none when it is missing, fails or times out. */
async function readGpus(options: HardwareOptions): Promise<GpuColumns> {
  try {
    return await readGpuInfo({ command: options.nvidiaSmi, timeoutMs: options.gpuTimeoutMs, exec: options.exec });
  } catch {
    return NO_GPU;
  }
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
