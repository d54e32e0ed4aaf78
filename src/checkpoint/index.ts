export { checkCheckpointDir } from './directory.js';
export { CheckpointError, CheckpointStoreUnavailableError } from './errors.js';
export {
  DTYPES,
  encodeSafetensors,
  writeFileAtomic,
  MAX_HEADER_BYTES,
  parseSafetensors,
  readSafetensors,
  removeTempFiles,
  writeSafetensors,
  type Dtype,
  type ReadSafetensorsOptions,
  type SafetensorsFile,
  type Tensor,
  type TensorData,
} from './safetensors.js';
export {
  CHECKPOINT_STORES,
  CheckpointStores,
  DEFAULT_CHECKPOINT_BUCKET,
  isObjectLocation,
  LocalCheckpointStore,
  OBJECT_STORE_SCHEME,
  ObjectCheckpointStore,
  parseObjectLocation,
  type CheckpointStore,
  type CheckpointStoreKind,
  type CheckpointStoresOptions,
  type ObjectStoreConnection,
  type Chunks,
  type ObjectBucket,
  type StoredCheckpoint,
} from './store.js';
