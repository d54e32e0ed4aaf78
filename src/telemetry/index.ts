export { DEFAULT_WATTS_PER_CORE, CpuEstimateProbe, type CpuEstimateOptions } from './estimate.js';
export { runCommand, type CommandRunner } from './exec.js';
export { ISA_FLAGS, parseCpuinfo, parseGpuCsv, RECORDED_PACKAGES, snapshotHardware, type HardwareOptions } from './hardware.js';
export {
  defaultEnergyMeterOptions, EnergyMeter, parseEnergyMeterOptions, type EnergyMeterDeps, type EnergyMeterOptions, type EnergySampleSet,
} from './meter.js';
export { findNvml, NvmlProbe, POWER_QUERY, readGpuWatts, type NvmlDiscovery, type NvmlOptions } from './nvml.js';
export { counterDeltaUj, findRaplPackages, POWERCAP_DIR, RaplProbe, type RaplDiscovery, type RaplDomain, type RaplOptions } from './rapl.js';
export { ENERGY_SOURCES, type EnergyProbe, type EnergyReading, type EnergySource, type HardwareInfo, type Unavailable } from './types.js';
export { RunTelemetry, type RunEnergyTotal, type RunTelemetryOptions } from './recorder.js';
