// This host's utilisation, temperature and power, sampled while it trains (workers send each
// sample with their progress reports). Only what can be read is reported; a source that fails
// is skipped from then on, never a reason to stop training.
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandRunner } from './exec.js';
import { readGpuStatus } from './nvidia-smi.js';
import { findRaplPackages, RaplProbe } from './rapl.js';
import type { HostTelemetry } from './types.js';

export interface HostSamplerOptions {
  /** GPUs the hardware snapshot found; 0 skips nvidia-smi. */
  gpuCount: number;
  /** Filesystem root holding `sys/` (tests point it at a fake tree). */
  sysRoot: string;
  /** Runs nvidia-smi; tests inject canned output. */
  exec: CommandRunner;
}

export function defaultHostSamplerOptions(): HostSamplerOptions {
  return { gpuCount: 0, sysRoot: '/', exec: runCommand };
}

/** The CPU temperature file: hwmon of a known CPU driver, else a thermal zone of type x86_pkg_temp. */
export function findCpuTempFile(root: string): string | null {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const list = (p: string) => {
    try {
      return readdirSync(p).sort();
    } catch {
      return [];
    }
  };
  const hwmon = join(root, 'sys/class/hwmon');
  for (const h of list(hwmon)) {
    if (
      ['k10temp', 'coretemp', 'zenpower', 'cpu_thermal'].includes(read(join(hwmon, h, 'name'))) &&
      read(join(hwmon, h, 'temp1_input')) !== ''
    ) {
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

  constructor(private readonly o: HostSamplerOptions) {
    this.tempFile = findCpuTempFile(o.sysRoot);
    const rapl = findRaplPackages({ root: o.sysRoot });
    if (rapl.available) {
      this.rapl = new RaplProbe(rapl.domains);
      this.rapl.reset(performance.now()).catch(() => {
        this.rapl = null;
      });
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
      } catch {
        /* gone: unknown */
      }
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
    readGpuStatus({ exec: this.o.exec })
      .then((gpus) => {
        this.gpus = gpus;
      })
      .catch(() => {
        this.gpuOff = true;
      })
      .finally(() => {
        this.gpuBusy = false;
      });
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
