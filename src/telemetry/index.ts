export { DEFAULT_WATTS_PER_CORE, CpuEstimateProbe, type CpuEstimateOptions } from './estimate.js';
export { runCommand, type CommandRunner } from './exec.js';
export { defaultHostSamplerOptions, findCpuTempFile, HostSampler, type HostSamplerOptions } from './host.js';
export { ISA_FLAGS, RECORDED_PACKAGES, snapshotHardware, type HardwareOptions, type SystemInformation } from './hardware.js';
export {
  defaultEnergyMeterOptions,
  EnergyMeter,
  parseEnergyMeterOptions,
  type EnergyMeterDeps,
  type EnergyMeterOptions,
  type EnergySampleSet,
} from './meter.js';
export { findNvml, NvmlProbe, type NvmlDiscovery } from './nvml.js';
export {
  GPU_INFO_QUERY,
  GPU_STATUS_QUERY,
  parseGpuInfo,
  parseGpuStatus,
  POWER_QUERY,
  readGpuInfo,
  readGpuStatus,
  readGpuWatts,
  type NvidiaSmiOptions,
} from './nvidia-smi.js';
export {
  counterDeltaUj,
  findRaplPackages,
  POWERCAP_DIR,
  RaplProbe,
  type RaplDiscovery,
  type RaplDomain,
  type RaplOptions,
} from './rapl.js';
export type {
  EnergyProbe,
  EnergyReading,
  EnergySource,
  GpuTelemetry,
  HardwareInfo,
  HostTelemetry,
  Unavailable,
} from './types.js';
export { RunTelemetry, type RunEnergyTotal, type RunTelemetryOptions } from './recorder.js';
export { ENERGY_SOURCES } from './energy-sources.js';
