export {
  ARCHS,
  BACKENDS,
  DATASET_NAMES,
  NORMALIZATIONS,
  OPTIMIZERS,
  PRECISIONS,
  SCHEDULES,
  DEFAULT_KEEP_CHECKPOINTS,
  defaultRunConfig,
  runConfigSchema,
  type Arch,
  type BackendName,
  type DatasetName,
  type Normalization,
  type Precision,
  type RunConfig,
  type RunConfigInput,
} from './schema.js';
export { ConfigError, formatConfigIssue, type ConfigIssue } from './errors.js';
export { loadConfig, parseConfigText, parseRunConfig, type ParseConfigOptions } from './load.js';
export {
  NAMED_OVERRIDES,
  applyOverrides,
  type ConfigOverrides,
  type NamedOverride,
  type NamedOverrideKey,
  type OverrideValue,
} from './overrides.js';
export { configHash, sameExperiment, stableStringify } from './hash.js';
export { codeVersion, packageRoot, packageVersion } from './package-info.js';
