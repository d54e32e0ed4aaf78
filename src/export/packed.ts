// Packed model files: binary latent kernels stored 1 bit per weight (the sign, packed along
// the input axis in the native kernels' layout), BatchNorm folded to its inference affine,
// everything else FP32. Safetensors layout, so any safetensors reader can open it.
import { BatchNorm, Dropout, QuantDense, type Layer } from '../bnn/layers.js';
import type { Model } from '../bnn/models.js';
import { writeSafetensors, type Tensor } from '../checkpoint/index.js';
import type { Normalization } from '../data/index.js';
import { UserError } from '../util/errors.js';

export const PACKED_FORMAT = 'bnn-packed/1';

/** One step of a packed dense network, in forward order. */
export type PackedOp =
  | { kind: 'flatten' }
  | { kind: 'relu' }
  | { kind: 'affine'; name: string; channels: number }
  | {
      kind: 'dense';
      name: string;
      inputs: number;
      units: number;
      /** `sign`: inputs are binarized (sign(0)=+1) before the product. */
      input: 'float' | 'sign';
      /** `packed`: kernel is ±1, 1 bit per weight ([units][ceil(inputs/64)] uint64 words); `f32`: float kernel [inputs][units]. */
      kernel: 'packed' | 'f32';
      bias: boolean;
    };

export interface PackedLayout {
  format: typeof PACKED_FORMAT;
  arch: string;
  precision: string;
  inputShape: [number, number, number];
  numClasses: number;
  ops: PackedOp[];
  normalization?: { mode: string; scale: number[]; offset: number[] };
}

const words = (k: number) => Math.ceil(k / 64);

/** Packs the columns of a row-major [k][n] float matrix by sign: row c of the result holds column c. */
export function packColumns(w: Float32Array, k: number, n: number): BigUint64Array {
  const kw = words(k);
  const out = new BigUint64Array(n * kw);
  const lo = new Uint32Array(out.buffer);
  for (let r = 0; r < k; r++) {
    const word = r >> 6;
    const bit = r & 63;
    const half = bit >> 5;
    const mask = (1 << (bit & 31)) >>> 0;
    for (let c = 0; c < n; c++) if (w[r * n + c] < 0) lo[(c * kw + word) * 2 + half] |= mask;
  }
  return out;
}

/** The model has a layer or quantizer without a packed form: `bnn export` cannot write it (a user error). */
class UnsupportedExportError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedExportError';
  }
}

function denseOp(l: QuantDense, forceF32 = false): PackedOp & { kind: 'dense' } {
  const [inputs, units] = l.kernel.shape;
  const kq = l.kernelQuantizer.config.id;
  const iq = l.inputQuantizer.config.id;
  if (kq !== 'ste_sign' && kq !== 'identity')
    throw new UnsupportedExportError(`${l.name}: kernel quantizer '${kq}' has no packed form yet`);
  if (iq !== 'ste_sign' && iq !== 'identity') throw new UnsupportedExportError(`${l.name}: input quantizer '${iq}' has no packed form yet`);
  return {
    kind: 'dense',
    name: l.name,
    inputs,
    units,
    input: iq === 'ste_sign' ? 'sign' : 'float',
    kernel: kq === 'ste_sign' && !forceF32 ? 'packed' : 'f32',
    bias: l.bias !== null,
  };
}

/** Layers that are the identity at inference. */
const inferenceIdentity = (l: Layer) => l instanceof Dropout;

function opOf(l: Layer, forceF32 = false): PackedOp {
  if (l instanceof QuantDense) return denseOp(l, forceF32);
  if (l instanceof BatchNorm) return { kind: 'affine', name: l.name, channels: l.channels };
  if (l.name.startsWith('flatten')) return { kind: 'flatten' };
  if (l.name.startsWith('relu')) return { kind: 'relu' };
  throw new UnsupportedExportError(`layer '${l.name}' has no packed form (packed export covers dense models)`);
}

/**
 * The packed file's tensors and layout; throws UnsupportedExportError for layers without a
 * packed form. `forceF32` keeps binary kernels as FP32 latents (the size baseline).
 */
export function packModel(
  model: Model,
  normalization?: Normalization,
  forceF32 = false,
): { tensors: Record<string, Tensor>; layout: PackedLayout } {
  const tensors: Record<string, Tensor> = {};
  const ops = model.layers.filter((l) => !inferenceIdentity(l)).map((l) => opOf(l, forceF32));
  for (const l of model.layers) {
    if (l instanceof QuantDense) {
      const op = denseOp(l, forceF32);
      const w = l.kernel.dataSync() as Float32Array;
      tensors[`${l.name}/kernel`] =
        op.kernel === 'packed'
          ? { dtype: 'U64', shape: [op.units, words(op.inputs)], data: packColumns(w, op.inputs, op.units) }
          : { dtype: 'F32', shape: [op.inputs, op.units], data: Float32Array.from(w) };
      if (l.bias)
        tensors[`${l.name}/bias`] = { dtype: 'F32', shape: [op.units], data: Float32Array.from(l.bias.dataSync() as Float32Array) };
    } else if (l instanceof BatchNorm) {
      const { scale, shift } = l.inferenceAffine();
      tensors[`${l.name}/scale`] = { dtype: 'F32', shape: [l.channels], data: scale };
      tensors[`${l.name}/shift`] = { dtype: 'F32', shape: [l.channels], data: shift };
    }
  }
  const layout: PackedLayout = {
    format: PACKED_FORMAT,
    arch: model.spec.arch,
    precision: model.spec.precision,
    inputShape: model.inputShape,
    numClasses: model.numClasses,
    ops,
    normalization: normalization && { mode: normalization.mode, scale: [...normalization.scale], offset: [...normalization.offset] },
  };
  return { tensors, layout };
}

/** Payload bytes of the packed form (tensor data, without the JSON header); null when the model has no packed form. */
export function packedSizeBytes(model: Model): number | null {
  try {
    let bytes = 0;
    for (const op of model.layers.filter((l) => !inferenceIdentity(l)).map((l) => opOf(l))) {
      if (op.kind === 'dense') {
        bytes += op.kernel === 'packed' ? op.units * words(op.inputs) * 8 : op.inputs * op.units * 4;
        if (op.bias) bytes += op.units * 4;
      } else if (op.kind === 'affine') bytes += op.channels * 8;
    }
    return bytes;
  } catch (err) {
    if (err instanceof UnsupportedExportError) return null;
    throw err;
  }
}

export async function writePackedModel(
  file: string,
  model: Model,
  normalization: Normalization | undefined,
  metadata: Record<string, string> = {},
  forceF32 = false,
): Promise<{ sha256: string; bytes: number; layout: PackedLayout }> {
  const { tensors, layout } = packModel(model, normalization, forceF32);
  const r = await writeSafetensors(file, tensors, { ...metadata, format: PACKED_FORMAT, layout: JSON.stringify(layout) });
  return { ...r, layout };
}

export { UnsupportedExportError };
