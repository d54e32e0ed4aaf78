import { runCommand, type CommandRunner } from './exec.js';
import type { GpuTelemetry, HardwareInfo } from './types.js';

/** How nvidia-smi is run. Every query of this module takes these. */
export interface NvidiaSmiOptions {
  /** nvidia-smi, by name on PATH or by path; default `nvidia-smi`. */
  command?: string;
  /** Longest one query may take; default 2000 ms. */
  timeoutMs?: number;
  /** Runs the command; tests inject canned output. */
  exec?: CommandRunner;
}

/** Name, driver and memory of each GPU, for the hardware snapshot (units kept: memory is `81559 MiB`). */
export const GPU_INFO_QUERY = ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'] as const;
/** Board power of each GPU in watts, for the nvml energy source. */
export const POWER_QUERY = ['--query-gpu=power.draw', '--format=csv,noheader,nounits'] as const;
/** Utilisation, temperature and power of each GPU, for the live host telemetry. */
export const GPU_STATUS_QUERY = ['--query-gpu=index,utilization.gpu,temperature.gpu,power.draw', '--format=csv,noheader,nounits'] as const;

/** Runs nvidia-smi with one query's arguments; rejects on a missing binary, non-zero exit or timeout. */
export function runNvidiaSmi(args: readonly string[], options: NvidiaSmiOptions = {}): Promise<string> {
  return (options.exec ?? runCommand)(options.command ?? 'nvidia-smi', args, options.timeoutMs ?? 2000);
}

/** `--format=csv,noheader` output: one row per GPU, fields trimmed, blank lines left out. */
export function parseCsvRows(out: string): string[][] {
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => l.split(',').map((c) => c.trim()));
}

/** The GPU part of a hardware snapshot (the selected index is the caller's). */
export type GpuColumns = Pick<HardwareInfo, 'gpuModel' | 'gpuDriver' | 'gpuMemoryBytes' | 'gpuCount'>;

/** What the hardware snapshot records when no NVIDIA GPU answers. */
export const NO_GPU: GpuColumns = { gpuModel: null, gpuDriver: null, gpuMemoryBytes: null, gpuCount: 0 };

/** Name, driver and memory of GPU `index` (default the first), and how many GPUs (GPU_INFO_QUERY). */
export async function readGpuInfo(options: NvidiaSmiOptions = {}, index = 0): Promise<GpuColumns> {
  return parseGpuInfo(await runNvidiaSmi(GPU_INFO_QUERY, options), index);
}

/** GPU_INFO_QUERY's output, `NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB` per line; row `index` described (none past the last). */
export function parseGpuInfo(out: string, index = 0): GpuColumns {
  const rows = parseCsvRows(out).filter((r) => r.length >= 3);
  const row = rows[index];
  if (!row) return { ...NO_GPU, gpuCount: rows.length };
  return { gpuModel: row[0] || null, gpuDriver: row[1] || null, gpuMemoryBytes: memoryBytes(row[2]!), gpuCount: rows.length };
}

const UNITS: Record<string, number> = { b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, kb: 1e3, mb: 1e6, gb: 1e9 };

function memoryBytes(text: string): number | null {
  const m = /^([\d.]+)\s*([a-z]+)?$/i.exec(text);
  if (!m) return null;
  const unit = UNITS[(m[2] ?? 'mib').toLowerCase()];
  return unit === undefined ? null : Math.round(Number(m[1]) * unit);
}

/** Board power of every GPU in watts, in nvidia-smi's order (POWER_QUERY); throws when any reading is missing. */
export async function readGpuWatts(options: NvidiaSmiOptions = {}): Promise<number[]> {
  const command = options.command ?? 'nvidia-smi';
  const rows = parseCsvRows(await runNvidiaSmi(POWER_QUERY, options));
  if (rows.length === 0) throw new Error(`${command} listed no GPUs`);
  return rows.map((row) => {
    const l = row.join(',');
    const w = Number(l);
    if (!Number.isFinite(w) || l === '') throw new Error(`${command} gave no power reading ("${l}")`);
    return w;
  });
}

/** Utilisation, temperature and power of every GPU (GPU_STATUS_QUERY). */
export async function readGpuStatus(options: NvidiaSmiOptions = {}): Promise<GpuTelemetry[]> {
  return parseGpuStatus(await runNvidiaSmi(GPU_STATUS_QUERY, options));
}

const num = (s: string | undefined): number | undefined => {
  const x = Number.parseFloat(s ?? '');
  return Number.isFinite(x) ? x : undefined;
};

/** GPU_STATUS_QUERY's output; utilisation as a fraction, "[N/A]" fields left out. */
export function parseGpuStatus(csv: string): GpuTelemetry[] {
  return parseCsvRows(csv).map(([index, util, temp, power]) => {
    const u = num(util);
    const t = num(temp);
    const p = num(power);
    return {
      index: num(index) ?? 0,
      ...(u !== undefined ? { util: u / 100 } : {}),
      ...(t !== undefined ? { tempC: t } : {}),
      ...(p !== undefined ? { powerW: p } : {}),
    };
  });
}
