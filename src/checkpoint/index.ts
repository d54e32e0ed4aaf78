export { checkCheckpointDir } from './directory.js';
export { CheckpointError } from './errors.js';
export {
  DTYPES,
  MAX_HEADER_BYTES,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
  type Dtype,
  type ReadSafetensorsOptions,
  type SafetensorsFile,
  type Tensor,
  type TensorData,
} from './safetensors.js';
