export type { Dataset, Split } from './types.js';
export { DataError, DataFormatError, DatasetNotFoundError, DataOptionError } from './errors.js';
export {
  DATASET_NAMES,
  DATA_DIR_ENV,
  DEFAULT_SYSTEM_DATA_DIR,
  IDX_FILES,
  clearDatasetCache,
  loadDataset,
  resolveDatasetDir,
  validateDatasetSpec,
  type DatasetName,
  type DatasetSpec,
  type LoadDatasetOptions,
} from './registry.js';
export { defaultSyntheticOptions, makeSyntheticDataset, parseSyntheticOptions, type SyntheticOptions } from './synthetic.js';
export {
  parseIdx,
  readIdx,
  readIdxImages,
  readIdxLabels,
  readIdxSplit,
  type IdxArray,
  type IdxImages,
  type IdxSplitExpectation,
} from './idx.js';
export { CIFAR10_CLASS_NAMES, loadCifar10, parseCifar10Batch, readCifar10Batch, resolveCifar10Dir } from './cifar10.js';
export { stratifiedSubset, stratifiedSubsetIndices, takeSamples } from './subset.js';
export {
  NORMALIZATION_MODES,
  channelStats,
  computeNormalization,
  fillBatch,
  normalizationTable,
  type ChannelStats,
  type Normalization,
  type NormalizationMode,
} from './normalize.js';
export {
  BatchCursor,
  epochPermutation,
  shardIndices,
  shardRange,
  type Batch,
  type BatchCursorOptions,
  type CursorState,
} from './loader.js';
