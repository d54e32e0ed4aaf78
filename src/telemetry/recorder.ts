import type { StoreDb } from '../store/db.js';
import { addEnergySamples } from '../store/energy.js';
import { recordHardware } from '../store/hardware.js';
import { snapshotHardware, type HardwareOptions } from './hardware.js';
import { EnergyMeter, type EnergyMeterDeps, type EnergyMeterOptions, type EnergySampleSet } from './meter.js';

export interface RunTelemetryOptions {
  /** Gets at most one line per run, for the first telemetry failure. */
  warn: (line: string) => void;
  /** Omit for the embedded trainer. */
  workerId?: string | null;
  meter?: Partial<EnergyMeterOptions>;
  hardware?: HardwareOptions;
  /** Test seams for the meter. */
  deps?: EnergyMeterDeps;
  /**
   * Where store writes go; default: written at once. `bnn train` passes its StoreWriteQueue's
   * push, so a store locked by another process delays them instead of failing them.
   */
  write?: (write: (db: StoreDb) => void) => void;
}

/** Energy of a whole run, as the train summary reports it. */
export interface RunEnergyTotal {
  /** Joules over every source; null when no energy could be measured or estimated. */
  joules: number | null;
  /** `nvml+rapl`, `rapl`, `estimate`, ...; null with `joules`. */
  source: string | null;
}

/**
 * A run's hardware snapshot and energy samples, recorded in the store. Telemetry must never
 * fail a run: every step here catches its errors, warns once, and carries on without
 * (a broken meter stops being sampled; the run's energy is then null).
 */
export class RunTelemetry {
  private meter: EnergyMeter | undefined;
  private warned = false;
  private joules = 0;
  private finished: RunEnergyTotal | undefined;

  private constructor(
    private readonly db: StoreDb,
    private readonly runId: string,
    private readonly options: RunTelemetryOptions,
  ) {}

  /** Records the hardware snapshot and starts the energy meter (both in parallel). */
  static async start(db: StoreDb, runId: string, options: RunTelemetryOptions): Promise<RunTelemetry> {
    const t = new RunTelemetry(db, runId, options);
    await Promise.all([t.recordHardware(), t.startMeter()]);
    return t;
  }

  /** Call from the step loop: keeps counters from wrapping unseen. Never throws. */
  tick(): void {
    this.meter?.tick();
  }

  /** Records the energy since the previous epoch end (or the start) under `epoch`. */
  async epochEnd(epoch: number): Promise<void> {
    const meter = this.meter;
    if (!meter) return;
    await this.guard('energy sampling', async () => this.store(await meter.sample(), epoch));
  }

  /** Records the energy since the last epoch end (no epoch) and stops the meter. Idempotent. */
  async finish(): Promise<RunEnergyTotal> {
    if (this.finished) return this.finished;
    const meter = this.meter;
    if (meter) await this.guard('energy sampling', async () => this.store(await meter.stop(), null));
    const ok = this.meter !== undefined;
    this.finished = { joules: ok ? this.joules : null, source: ok ? this.meter!.label : null };
    return this.finished;
  }

  private async recordHardware(): Promise<void> {
    await this.guard('hardware snapshot', async () => {
      const hardware = await snapshotHardware(this.options.hardware);
      const row = { hardware, runId: this.runId, workerId: this.options.workerId ?? null };
      this.write((db) => recordHardware(db, row));
    });
  }

  private async startMeter(): Promise<void> {
    await this.guard('energy meter', async () => {
      const meter = new EnergyMeter(this.options.meter, this.options.deps);
      await meter.start();
      this.meter = meter;
    });
  }

  private write(fn: (db: StoreDb) => void): void {
    if (this.options.write) this.options.write(fn);
    else fn(this.db);
  }

  private store(set: EnergySampleSet, epoch: number | null): void {
    const rows = set.readings.map((r) => ({
      runId: this.runId,
      workerId: this.options.workerId ?? null,
      epoch,
      at: set.at,
      watts: r.watts,
      joules: r.joules,
      source: r.source,
      detail: { ...r.detail, intervalS: r.intervalS },
    }));
    this.write((db) => addEnergySamples(db, rows));
    this.joules += set.joules;
  }

  private async guard(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (what === 'energy sampling' || what === 'energy meter') {
        // A meter that failed once is not trusted for the rest of the run.
        void this.meter?.stop().catch(() => {});
        this.meter = undefined;
      }
      if (this.warned) return;
      this.warned = true;
      this.options.warn(
        `bnn: warning: telemetry: ${what} failed (${(err as Error).message ?? String(err)}); training continues without it`,
      );
    }
  }
}
