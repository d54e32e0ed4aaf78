// Each rank's progress for the coordinator's monitor (/metrics, dashboard): the steps since the
// previous report (wall time of each, all-reduce bytes and seconds) and this host's utilisation,
// temperature and power where they can be read. About once a second, one report in flight at
// most; a failed report is dropped, never a reason to stop training.
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandRunner } from '../src/telemetry/exec.js';
import { findRaplPackages, RaplProbe } from '../src/telemetry/rapl.js';
import type { MetricsReport } from '../src/rpc/index.js';

/** `MetricsReport.telemetry_json`: what this host could measure; absent fields are unknown. */
export interface HostTelemetry {
  /** Busy fraction of all this host's CPUs since the previous report, 0–1. */
  cpuUtil?: number;
  /** CPU package temperature, °C (hwmon k10temp/coretemp/zenpower, or thermal zone x86_pkg_temp). */
  cpuTempC?: number;
  /** CPU package power, W (RAPL, summed over packages). */
  cpuPowerW?: number;
  /** One entry per NVIDIA GPU (nvidia-smi); `util` is 0–1. */
  gpus?: Array<{ index: number; util?: number; tempC?: number; powerW?: number }>;
}

export interface ProgressOptions {
  /** How often a report is sent while steps are being taken. */
  intervalMs: number;
  /** With no step taken, telemetry alone is sent at most this often. */
  idleIntervalMs: number;
  /** GPUs the hardware snapshot found; 0 skips nvidia-smi. */
  gpuCount: number;
  /** Filesystem root holding `sys/` (tests point it at a fake tree). */
  sysRoot: string;
  exec: CommandRunner;
}

export function defaultProgressOptions(): ProgressOptions {
  return { intervalMs: 1000, idleIntervalMs: 5000, gpuCount: 0, sysRoot: '/', exec: runCommand };
}

export const GPU_QUERY = ['--query-gpu=index,utilization.gpu,temperature.gpu,power.draw', '--format=csv,noheader,nounits'] as const;

const num = (s: string | undefined): number | undefined => {
  const x = Number.parseFloat(s ?? '');
  return Number.isFinite(x) ? x : undefined;
};

/** `nvidia-smi --query-gpu=index,utilization.gpu,temperature.gpu,power.draw` CSV; "[N/A]" fields are left out. */
export function parseGpuQuery(csv: string): NonNullable<HostTelemetry['gpus']> {
  return csv.trim().split('\n').filter((l) => l.trim() !== '').map((line) => {
    const [index, util, temp, power] = line.split(',').map((f) => f.trim());
    const u = num(util);
    const t = num(temp);
    const p = num(power);
    return { index: num(index) ?? 0, ...(u !== undefined ? { util: u / 100 } : {}), ...(t !== undefined ? { tempC: t } : {}), ...(p !== undefined ? { powerW: p } : {}) };
  });
}

/** The CPU temperature file: hwmon of a known CPU driver, else a thermal zone of type x86_pkg_temp. */
export function findCpuTempFile(root: string): string | null {
  const read = (p: string) => { try { return readFileSync(p, 'utf8').trim(); } catch { return ''; } };
  const list = (p: string) => { try { return readdirSync(p).sort(); } catch { return []; } };
  const hwmon = join(root, 'sys/class/hwmon');
  for (const h of list(hwmon)) {
    if (['k10temp', 'coretemp', 'zenpower', 'cpu_thermal'].includes(read(join(hwmon, h, 'name'))) && read(join(hwmon, h, 'temp1_input')) !== '') {
      return join(hwmon, h, 'temp1_input');
    }
  }
  const thermal = join(root, 'sys/class/thermal');
  for (const z of list(thermal)) {
    if (read(join(thermal, z, 'type')) === 'x86_pkg_temp' && read(join(thermal, z, 'temp')) !== '') return join(thermal, z, 'temp');
  }
  return null;
}

/** Host telemetry between calls of `sample()`; sources that cannot be read are skipped for good. */
export class HostSampler {
  private lastCpu = cpuTimes();
  private readonly tempFile: string | null;
  private rapl: RaplProbe | null = null;
  private gpus: HostTelemetry['gpus'];
  private gpuQueryAtMs = -Infinity;
  private gpuBusy = false;
  private gpuOff: boolean;

  constructor(private readonly o: ProgressOptions) {
    this.tempFile = findCpuTempFile(o.sysRoot);
    const rapl = findRaplPackages({ root: o.sysRoot });
    if (rapl.available) {
      this.rapl = new RaplProbe(rapl.domains);
      this.rapl.reset(performance.now()).catch(() => { this.rapl = null; });
    }
    this.gpuOff = o.gpuCount === 0;
  }

  async sample(): Promise<HostTelemetry> {
    const out: HostTelemetry = {};
    const cpu = cpuTimes();
    const total = cpu.total - this.lastCpu.total;
    if (total > 0) out.cpuUtil = Math.min(1, Math.max(0, (cpu.busy - this.lastCpu.busy) / total));
    this.lastCpu = cpu;
    if (this.tempFile) {
      try {
        const milli = Number.parseInt(readFileSync(this.tempFile, 'utf8'), 10);
        if (Number.isFinite(milli)) out.cpuTempC = milli / 1000;
      } catch { /* gone: unknown */ }
    }
    if (this.rapl) {
      try {
        const r = await this.rapl.take(performance.now());
        if (r.watts !== null) out.cpuPowerW = r.watts;
      } catch {
        this.rapl = null;
      }
    }
    this.refreshGpus();
    if (this.gpus) out.gpus = this.gpus;
    return out;
  }

  /** nvidia-smi takes tens of ms: queried in the background every few seconds, the last answer reported. */
  private refreshGpus(): void {
    const now = performance.now();
    if (this.gpuOff || this.gpuBusy || now - this.gpuQueryAtMs < 3000) return;
    this.gpuBusy = true;
    this.gpuQueryAtMs = now;
    this.o.exec('nvidia-smi', GPU_QUERY, 2000)
      .then((csv) => { this.gpus = parseGpuQuery(csv); })
      .catch(() => { this.gpuOff = true; })
      .finally(() => { this.gpuBusy = false; });
  }
}

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

/**
 * Collects steps and all-reduce timings as training calls `step()` and `allreduce()`, and sends
 * them with host telemetry through `send` every `intervalMs`. `stop()` sends what is left.
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

  constructor(private readonly send: (m: Partial<MetricsReport>) => Promise<void>, options: Partial<ProgressOptions> = {}) {
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
    if (steps === 0 && (final || now - this.lastSentMs < this.o.idleIntervalMs)) return;
    const windowS = (now - this.windowStartMs) / 1000;
    const report: Partial<MetricsReport> = {
      steps: this.step, samples_per_s: windowS > 0 ? this.samples / windowS : 0, step_seconds: this.stepSeconds,
      allreduce_bytes: this.allreduceBytes, allreduce_seconds: this.allreduceSeconds,
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
