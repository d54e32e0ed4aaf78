import { commandFailure } from './exec.js';
import { readGpuWatts, type NvidiaSmiOptions } from './nvidia-smi.js';
import type { EnergyProbe, EnergyReading } from './types.js';

export type NvmlDiscovery = { available: true; probe: NvmlProbe } | { available: false; reason: string };

/** A GPU power probe when nvidia-smi answers with a power reading for every GPU. */
export async function findNvml(options: NvidiaSmiOptions = {}): Promise<NvmlDiscovery> {
  const command = options.command ?? 'nvidia-smi';
  try {
    const watts = await readGpuWatts(options);
    return { available: true, probe: new NvmlProbe(options, watts.length) };
  } catch (err) {
    const reason =
      (err as { code?: unknown }).code !== undefined || (err as { killed?: boolean }).killed
        ? commandFailure(command, err)
        : (err as Error).message;
    return { available: false, reason };
  }
}

/**
 * GPU energy from sampled board power: each interval between two readings adds the mean
 * of its end powers × its length (trapezoid rule). Poll often for a close integral; a
 * reading that fails repeats the last one (the GPU's power is then assumed unchanged).
 */
export class NvmlProbe implements EnergyProbe {
  readonly source = 'nvml' as const;
  private lastWatts: number[] = [];
  private lastMs = 0;
  private sinceMs = 0;
  private joules = 0;
  private readings = 0;
  private failures = 0;

  constructor(
    private readonly options: NvidiaSmiOptions,
    readonly gpus: number,
  ) {}

  async reset(nowMs: number): Promise<void> {
    this.lastWatts = await this.read();
    this.lastMs = nowMs;
    this.sinceMs = nowMs;
    this.joules = 0;
    this.readings = 1;
    this.failures = 0;
  }

  async poll(nowMs: number): Promise<void> {
    const watts = await this.read();
    const dt = Math.max(0, (nowMs - this.lastMs) / 1000);
    const before = sum(this.lastWatts);
    this.joules += ((before + sum(watts)) / 2) * dt;
    this.lastWatts = watts;
    this.lastMs = nowMs;
    this.readings++;
  }

  async take(nowMs: number): Promise<EnergyReading> {
    await this.poll(nowMs);
    const intervalS = Math.max(0, (nowMs - this.sinceMs) / 1000);
    const reading: EnergyReading = {
      source: 'nvml',
      joules: this.joules,
      watts: intervalS > 0 ? this.joules / intervalS : null,
      intervalS,
      detail: { gpus: this.gpus, readings: this.readings, failedReadings: this.failures, lastWatts: this.lastWatts },
    };
    this.sinceMs = nowMs;
    this.joules = 0;
    this.readings = 1;
    this.failures = 0;
    return reading;
  }

  private async read(): Promise<number[]> {
    try {
      return await readGpuWatts(this.options);
    } catch {
      this.failures++;
      return this.lastWatts;
    }
  }
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
