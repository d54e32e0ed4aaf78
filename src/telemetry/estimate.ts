import type { EnergyProbe, EnergyReading } from './types.js';

/**
 * Watts one fully busy CPU core draws, for the estimate. 15 W is a desktop-class core
 * (about a 125 W TDP over 8 cores); a laptop core is nearer 5 W, a server core 8–12 W.
 * Idle, uncore, memory and GPU power are not counted: the estimate is this process's
 * CPU time priced at this rate, nothing more.
 */
export const DEFAULT_WATTS_PER_CORE = 15;

export interface CpuEstimateOptions {
  /** See DEFAULT_WATTS_PER_CORE. */
  wattsPerCore?: number;
  /** CPU time used by this process (all its threads), in microseconds; tests inject one. */
  cpuUsage?: () => { user: number; system: number };
}

/**
 * Energy estimated as this process's CPU time (user + system, every thread) × watts per
 * core. Always available; stored with source `estimate` and labelled as such.
 */
export class CpuEstimateProbe implements EnergyProbe {
  readonly source = 'estimate' as const;
  readonly wattsPerCore: number;
  private readonly cpuUsage: () => { user: number; system: number };
  private lastCpuUs = 0;
  private cpuSeconds = 0;
  private sinceMs = 0;

  constructor(options: CpuEstimateOptions = {}) {
    this.wattsPerCore = options.wattsPerCore ?? DEFAULT_WATTS_PER_CORE;
    if (!(this.wattsPerCore > 0) || !Number.isFinite(this.wattsPerCore)) {
      throw new RangeError(`wattsPerCore must be a positive number, got ${this.wattsPerCore}`);
    }
    this.cpuUsage = options.cpuUsage ?? (() => process.cpuUsage());
  }

  async reset(nowMs: number): Promise<void> {
    this.lastCpuUs = this.cpuNowUs();
    this.cpuSeconds = 0;
    this.sinceMs = nowMs;
  }

  async poll(_nowMs: number): Promise<void> {
    const now = this.cpuNowUs();
    this.cpuSeconds += Math.max(0, now - this.lastCpuUs) / 1e6;
    this.lastCpuUs = now;
  }

  async take(nowMs: number): Promise<EnergyReading> {
    await this.poll(nowMs);
    const intervalS = Math.max(0, (nowMs - this.sinceMs) / 1000);
    const joules = this.cpuSeconds * this.wattsPerCore;
    const reading: EnergyReading = {
      source: 'estimate',
      joules,
      watts: intervalS > 0 ? joules / intervalS : null,
      intervalS,
      detail: {
        method: 'process CPU time × watts per core',
        cpuSeconds: this.cpuSeconds,
        wattsPerCore: this.wattsPerCore,
      },
    };
    this.cpuSeconds = 0;
    this.sinceMs = nowMs;
    return reading;
  }

  private cpuNowUs(): number {
    const u = this.cpuUsage();
    return u.user + u.system;
  }
}
