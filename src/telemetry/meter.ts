import { z } from 'zod';
import { CpuEstimateProbe, DEFAULT_WATTS_PER_CORE } from './estimate.js';
import type { CommandRunner } from './exec.js';
import { findNvml } from './nvml.js';
import { findRaplPackages, RaplProbe } from './rapl.js';
import {
  MEASURED_ENERGY_SOURCES as ENERGY_SOURCES,
  type EnergyProbe,
  type EnergyReading,
  type EnergySource,
  type Unavailable,
} from './types.js';

export interface EnergyMeterOptions {
  /** Filesystem root holding `sys/class/powercap` for RAPL (tests point it at a fake tree). */
  raplRoot: string;
  /** nvidia-smi, by name on PATH or by path. */
  nvidiaSmi: string;
  /** Longest one nvidia-smi query may take. */
  nvmlTimeoutMs: number;
  /** The estimate's watts per busy core (see DEFAULT_WATTS_PER_CORE). */
  wattsPerCore: number;
  /**
   * Poll sources every this many ms between samples (0: only when sampled). Polling keeps
   * RAPL counters from wrapping twice unseen and integrates GPU power more finely; it
   * runs only while the event loop is free.
   */
  intervalMs: number;
  /**
   * `tick()` reads RAPL counters at most this often. A busy synchronous loop starves the
   * interval timer, so it calls `tick()` instead; reading well inside the wrap period
   * (max_energy_range_uj at full power: tens of minutes) keeps every wrap seen.
   */
  tickMs: number;
  /** Sources allowed, best first picked from these; e.g. `['estimate']` forces the estimate. */
  sources: readonly EnergySource[];
}

export function defaultEnergyMeterOptions(): EnergyMeterOptions {
  return {
    raplRoot: '/',
    nvidiaSmi: 'nvidia-smi',
    nvmlTimeoutMs: 2000,
    wattsPerCore: DEFAULT_WATTS_PER_CORE,
    intervalMs: 0,
    tickMs: 30_000,
    sources: ENERGY_SOURCES,
  };
}

const optionsSchema = z
  .object({
    raplRoot: z.string().min(1),
    nvidiaSmi: z.string().min(1),
    nvmlTimeoutMs: z.number().int().positive(),
    wattsPerCore: z.number().positive().finite(),
    intervalMs: z.number().int().nonnegative(),
    tickMs: z.number().int().nonnegative(),
    sources: z.array(z.enum(ENERGY_SOURCES)).min(1),
  })
  .strict();

/** Fills defaults and validates, before any I/O; a bad value is a RangeError naming the field. */
export function parseEnergyMeterOptions(options: Partial<EnergyMeterOptions> = {}): EnergyMeterOptions {
  const merged = { ...defaultEnergyMeterOptions(), ...options, sources: [...(options.sources ?? ENERGY_SOURCES)] };
  const r = optionsSchema.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new RangeError(`energy meter option ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return r.data;
}

/** What one `sample()` returns: per-source energy since the previous sample (or start). */
export interface EnergySampleSet {
  at: Date;
  readings: EnergyReading[];
  /** Sum over readings. */
  joules: number;
}

/** Test seams: time and process probes. */
export interface EnergyMeterDeps {
  nowMs?: () => number;
  exec?: CommandRunner;
  readText?: (path: string) => string;
  cpuUsage?: () => { user: number; system: number };
}

/**
 * Measures this host's energy with the best sources available: GPU board power (nvml)
 * and CPU package counters (rapl) where present, else an estimate from this process's
 * CPU time. `start()` picks and baselines them, `sample()` returns the energy since the
 * previous sample per source, `stop()` takes a last sample and stops polling.
 */
export class EnergyMeter {
  readonly options: EnergyMeterOptions;
  private probes: EnergyProbe[] = [];
  private skipped: Unavailable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private state: 'new' | 'running' | 'stopped' = 'new';
  private readonly nowMs: () => number;
  private rapl: RaplProbe | undefined;
  private lastTickMs = 0;

  constructor(
    options: Partial<EnergyMeterOptions> = {},
    private readonly deps: EnergyMeterDeps = {},
  ) {
    this.options = parseEnergyMeterOptions(options);
    this.nowMs = deps.nowMs ?? (() => performance.now());
  }

  /** Sources in use after `start()`, in nvml, rapl, estimate order. */
  get sources(): EnergySource[] {
    return this.probes.map((p) => p.source);
  }

  /** Sources in use, `+`-joined: `rapl`, `nvml+rapl`, `estimate`. */
  get label(): string {
    return this.sources.join('+');
  }

  /** Sources that were wanted but could not be used, with why. */
  get unavailable(): readonly Unavailable[] {
    return this.skipped;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('EnergyMeter.start: already started');
    this.state = 'running';
    const o = this.options;
    const want = new Set(o.sources);
    const measured: EnergyProbe[] = [];
    if (want.has('nvml')) {
      const nvml = await findNvml({ command: o.nvidiaSmi, timeoutMs: o.nvmlTimeoutMs, exec: this.deps.exec });
      if (nvml.available) measured.push(nvml.probe);
      else this.skipped.push({ source: 'nvml', reason: nvml.reason });
    }
    if (want.has('rapl')) {
      const rapl = findRaplPackages({ root: o.raplRoot, readText: this.deps.readText });
      if (rapl.available) {
        this.rapl = new RaplProbe(rapl.domains, { readText: this.deps.readText });
        measured.push(this.rapl);
      } else this.skipped.push({ source: 'rapl', reason: rapl.reason });
    }
    this.probes = measured;
    if (measured.length === 0) {
      if (!want.has('estimate'))
        throw new Error(`no energy source available: ${this.skipped.map((s) => `${s.source}: ${s.reason}`).join('; ')}`);
      this.probes = [new CpuEstimateProbe({ wattsPerCore: o.wattsPerCore, cpuUsage: this.deps.cpuUsage })];
    }
    const now = this.nowMs();
    this.lastTickMs = now;
    await Promise.all(this.probes.map((p) => p.reset(now)));
    if (o.intervalMs > 0) {
      this.timer = setInterval(() => void this.serial(() => this.pollAll()).catch(() => {}), o.intervalMs);
      this.timer.unref();
    }
  }

  /**
   * Cheap enough for every training step: reads RAPL counters (synchronously) when
   * `tickMs` has passed since the last read, so a wrap is never missed during a long
   * synchronous epoch. Never throws; a failed read shows up at the next `sample()`.
   */
  tick(): void {
    if (this.state !== 'running' || this.rapl === undefined) return;
    const now = this.nowMs();
    if (now - this.lastTickMs < this.options.tickMs) return;
    this.lastTickMs = now;
    try {
      this.rapl.pollSync();
    } catch {
      // Reported by the next sample, which reads the same files.
    }
  }

  /** Energy per source since the previous sample (or `start()`). */
  sample(): Promise<EnergySampleSet> {
    if (this.state !== 'running') return Promise.reject(new Error(`EnergyMeter.sample: meter is ${this.state}`));
    return this.serial(() => this.takeAll());
  }

  /** Takes a last sample and stops polling. Idempotent: later calls return an empty set. */
  async stop(): Promise<EnergySampleSet> {
    if (this.state !== 'running') {
      this.state = 'stopped';
      return { at: new Date(), readings: [], joules: 0 };
    }
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const last = await this.serial(() => this.takeAll());
    this.state = 'stopped';
    return last;
  }

  private async pollAll(): Promise<void> {
    const now = this.nowMs();
    await Promise.all(this.probes.map((p) => p.poll(now)));
  }

  private async takeAll(): Promise<EnergySampleSet> {
    const now = this.nowMs();
    const readings = await Promise.all(this.probes.map((p) => p.take(now)));
    return { at: new Date(), readings, joules: readings.reduce((a, r) => a + r.joules, 0) };
  }

  /** Polls and samples never overlap (both read and reset the same counters). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => {});
    return next;
  }
}
