// A worker's energy for its run, measured with the same meter as `bnn train`
// (src/telemetry/meter.ts: NVML, RAPL, or the CPU-time estimate) and sent to the coordinator,
// which stores the samples under this worker: one per epoch (taken when the steps move on to
// the next epoch) and the rest with the rank's `done` report. Telemetry never fails a run: a
// meter that fails is dropped, once, with a warning.
import { EnergyMeter, type EnergySampleSet } from '../src/telemetry/meter.js';

/** What travels in MetricsReport.energy_json. */
export interface EnergyReport {
  /** The epoch the interval ended in; null for the tail after the last epoch boundary. */
  epoch: number | null;
  at: string;
  readings: Array<{ source: string; joules: number; watts: number | null; intervalS: number; detail: Record<string, unknown> }>;
}

export function energyJson(set: EnergySampleSet, epoch: number | null): string {
  const report: EnergyReport = {
    epoch,
    at: set.at.toISOString(),
    readings: set.readings.map((r) => ({ source: r.source, joules: r.joules, watts: r.watts, intervalS: r.intervalS, detail: r.detail })),
  };
  return JSON.stringify(report);
}

export class WorkerEnergy {
  private epoch = 0;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private meter: EnergyMeter | null,
    private readonly send: (energyJson: string) => Promise<void>,
    private readonly warn: (line: string) => void,
  ) {}

  /** Starts the meter (a failure leaves the run without energy, warned once). */
  static async start(send: (energyJson: string) => Promise<void>, warn: (line: string) => void): Promise<WorkerEnergy> {
    try {
      const meter = new EnergyMeter();
      await meter.start();
      return new WorkerEnergy(meter, send, warn);
    } catch (err) {
      warn(`telemetry: energy meter failed (${(err as Error).message}); this worker's energy is not recorded`);
      return new WorkerEnergy(null, send, warn);
    }
  }

  /** After each step, with the step's 1-based epoch: the first step of a new epoch closes the previous one's sample. */
  step(epoch: number): void {
    this.meter?.tick();
    if (epoch === this.epoch) return;
    const ended = this.epoch;
    this.epoch = epoch;
    if (ended === 0) return;
    const meter = this.meter;
    if (!meter) return;
    this.chain = this.chain.then(async () => {
      try {
        await this.send(energyJson(await meter.sample(), ended));
      } catch (err) {
        this.drop(err);
      }
    });
  }

  /** The last sample (the epoch in progress) as energy_json for the `done` report; '' without a meter. Stops the meter. */
  async finish(): Promise<string> {
    await this.chain;
    const meter = this.meter;
    if (!meter) return '';
    this.meter = null;
    try {
      return energyJson(await meter.stop(), this.epoch > 0 ? this.epoch : null);
    } catch (err) {
      this.drop(err);
      return '';
    }
  }

  /** Stops the meter without reporting (the run failed or was stopped). */
  close(): void {
    void this.meter?.stop().catch(() => undefined);
    this.meter = null;
  }

  private drop(err: unknown): void {
    if (!this.meter) return;
    void this.meter.stop().catch(() => undefined);
    this.meter = null;
    this.warn(`telemetry: energy sampling failed (${(err as Error).message}); this worker's energy is no longer recorded`);
  }
}
