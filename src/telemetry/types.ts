/**
 * Where an energy figure comes from. nvml: GPU board power (nvidia-smi); rapl: CPU package
 * counters; estimate: this process's CPU time × watts per core.
 */
export type EnergySource = 'nvml' | 'rapl' | 'estimate';

/**
 * Every source, best first, as the meter picks them. The store keeps the same list (its CHECK
 * on `energy_samples.source`); `src/telemetry/energy-sources.ts` checks the types agree and
 * test/telemetry-meter.test.ts the order. Defined here so the meter, which a worker runs, does
 * not import the store.
 */
export const MEASURED_ENERGY_SOURCES: readonly [EnergySource, ...EnergySource[]] = ['nvml', 'rapl', 'estimate'];

/** Energy one source measured (or estimated) over one interval. */
export interface EnergyReading {
  source: EnergySource;
  /** Energy since the previous reading of this source. */
  joules: number;
  /** Mean power over the interval; null when the interval was empty. */
  watts: number | null;
  intervalS: number;
  /** Source specifics (domains, GPUs, the estimate's assumption), stored as the sample's detail. */
  detail: Record<string, unknown>;
}

/** A source that could not be used, and why. */
export interface Unavailable {
  source: EnergySource;
  reason: string;
}

/**
 * One energy source. `reset` takes the baseline, `poll` folds a reading into the running
 * total (called on an interval, so counters are read before they can wrap twice),
 * `take` polls and returns the energy since the previous `take` (or `reset`).
 */
export interface EnergyProbe {
  readonly source: EnergySource;
  reset(nowMs: number): Promise<void>;
  poll(nowMs: number): Promise<void>;
  take(nowMs: number): Promise<EnergyReading>;
}

/** What a host looks like: CPU, memory, GPUs, OS and the versions that shape results. */
export interface HardwareInfo {
  cpuModel: string;
  /** Physical cores (systeminformation; logical CPUs where unknown). */
  cpuCores: number;
  /** Logical CPUs (hardware threads). */
  cpuThreads: number;
  /** ISA features by flag name, e.g. `{"avx2": true, "avx512f": true, "avx512_vpopcntdq": false}`. */
  isaFlags: Record<string, boolean>;
  memoryBytes: number;
  /** The selected GPU's name (the first when none was selected); null when no NVIDIA GPU was found. */
  gpuModel: string | null;
  gpuDriver: string | null;
  gpuMemoryBytes: number | null;
  /** NVIDIA GPUs on the host (all of them, whatever CUDA_VISIBLE_DEVICES says). */
  gpuCount: number;
  /** The GPU this worker was given (`bnn worker --gpu`, nvidia-smi's order), whose model, driver and memory are the ones above; null when none was given (then they describe the first GPU). */
  gpuIndex: number | null;
  /** `platform release arch`, e.g. `linux 6.8.0 x64`. */
  os: string;
  nodeVersion: string;
  /** Versions of the packages that shape results, by package name (bnn-cluster, @tensorflow/tfjs, ...). */
  packageVersions: Record<string, string>;
}

/** One GPU's live figures (nvidia-smi); `util` is 0–1. */
export interface GpuTelemetry {
  index: number;
  util?: number;
  tempC?: number;
  powerW?: number;
}

/**
 * What a host could measure between two samples (src/telemetry/host.ts), as workers send it
 * in `MetricsReport.telemetry_json`; absent fields are unknown.
 */
export interface HostTelemetry {
  /** Busy fraction of all this host's CPUs since the previous sample, 0–1. */
  cpuUtil?: number;
  /** CPU package temperature, °C (hwmon k10temp/coretemp/zenpower, or thermal zone x86_pkg_temp). */
  cpuTempC?: number;
  /** CPU package power, W (RAPL, summed over packages). */
  cpuPowerW?: number;
  /** One entry per NVIDIA GPU. */
  gpus?: GpuTelemetry[];
}
