// Each rank's progress for the coordinator's monitor (/metrics, dashboard): the steps since the
// previous report (wall time of each, all-reduce bytes and seconds) and this host's utilisation,
// temperature and power where they can be read (src/telemetry/host.ts). About once a second, one
// report in flight at most; a failed report is dropped, never a reason to stop training.
import { defaultHostSamplerOptions, HostSampler, type HostSamplerOptions } from '../src/telemetry/host.js';
import type { MetricsReport } from '../src/rpc/index.js';

export interface ProgressOptions extends HostSamplerOptions {
  /** How often a report is sent while steps are being taken. */
  intervalMs: number;
  /** With no step taken, telemetry alone is sent at most this often. */
  idleIntervalMs: number;
}

export function defaultProgressOptions(): ProgressOptions {
  return { intervalMs: 1000, idleIntervalMs: 5000, ...defaultHostSamplerOptions() };
}

/**
 * Collects steps and all-reduce timings as training calls `step()` and `allreduce()`, and sends
 * them with host telemetry through `send` every `intervalMs`. `stop()` sends what is left.
 * `fields`, read once per report, adds what other parts have to say since the previous one (the
 * collective's rejected messages); a non-empty result is sent even without a step.
 */
export class ProgressReporter {
  private readonly o: ProgressOptions;
  private readonly host: HostSampler;
  private stepSeconds: number[] = [];
  private samples = 0;
  private step = 0;
  private allreduceBytes = 0;
  private allreduceSeconds = 0;
  private windowStartMs = performance.now();
  private lastSentMs = 0;
  private inFlight: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly send: (m: Partial<MetricsReport>) => Promise<void>,
    options: Partial<ProgressOptions> = {},
    private readonly fields: () => Partial<MetricsReport> = () => ({}),
  ) {
    this.o = { ...defaultProgressOptions(), ...options };
    this.host = new HostSampler(this.o);
    this.timer = setInterval(() => void this.flush(false), this.o.intervalMs);
    this.timer.unref();
  }

  /** One optimizer step: its wall time, the samples this rank computed, the step number after it. */
  stepDone(seconds: number, samples: number, step: number): void {
    this.stepSeconds.push(seconds);
    this.samples += samples;
    this.step = step;
  }

  /** Runs one all-reduce and adds its time and the bytes `bytes()` grew by. */
  async allreduce<T>(run: () => Promise<T>, bytes: () => number): Promise<T> {
    const b0 = bytes();
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      this.allreduceSeconds += (performance.now() - t0) / 1000;
      this.allreduceBytes += bytes() - b0;
    }
  }

  /** Stops the timer and sends the steps not reported yet (waits for it). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlight;
    await this.flush(true);
  }

  /** Stops the timer without sending more (the run ended elsewhere, or the coordinator is gone). */
  close(): void {
    clearInterval(this.timer);
  }

  private async flush(final: boolean): Promise<void> {
    if (this.inFlight && !final) return;
    const now = performance.now();
    const steps = this.stepSeconds.length;
    const extra = this.fields();
    if (steps === 0 && Object.keys(extra).length === 0 && (final || now - this.lastSentMs < this.o.idleIntervalMs)) return;
    const windowS = (now - this.windowStartMs) / 1000;
    const report: Partial<MetricsReport> = {
      ...extra,
      steps: this.step,
      samples_per_s: windowS > 0 ? this.samples / windowS : 0,
      step_seconds: this.stepSeconds,
      allreduce_bytes: this.allreduceBytes,
      allreduce_seconds: this.allreduceSeconds,
    };
    this.stepSeconds = [];
    this.samples = 0;
    this.allreduceBytes = 0;
    this.allreduceSeconds = 0;
    this.windowStartMs = now;
    this.lastSentMs = now;
    const sending = (async () => {
      try {
        report.telemetry_json = JSON.stringify(await this.host.sample());
        await this.send(report);
      } catch {
        // Monitoring only: the next report carries on.
      }
    })();
    this.inFlight = sending;
    try {
      await sending;
    } finally {
      if (this.inFlight === sending) this.inFlight = null;
    }
  }
}
