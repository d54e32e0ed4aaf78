// Inference on a packed model without tfjs: XNOR-popcount GEMM where both operands are
// binary, OpenBLAS sgemm for the float products, plain loops for the rest.
import { readSafetensors, CheckpointError, type Tensor } from '../checkpoint/index.js';
import type { NativeAddon } from '../native/addon.js';
import { PACKED_FORMAT, type PackedLayout, type PackedOp } from './packed.js';

type DenseOp = PackedOp & { kind: 'dense' };
type BitplaneGemm = (raw: Uint8Array, m: number, k: number, w: Int32Array, n: number, out: Float32Array) => void;

interface PreparedDense {
  op: DenseOp;
  /** XNOR path: packed kernel as the addon's Int32Array view. */
  packed?: Int32Array;
  /** Float path: kernel [inputs][units] (±1 for a packed kernel with float inputs). */
  weights?: Float32Array;
  bias?: Float32Array;
}

type Step = { kind: 'dense'; d: PreparedDense } | { kind: 'affine'; scale: Float32Array; shift: Float32Array } | { kind: 'relu' };

export interface PackedModel {
  layout: PackedLayout;
  bytes: number;
  sha256: string;
  /** Logits [batch][numClasses] for normalised NHWC input [batch][h·w·c]. */
  predict(x: Float32Array, batch: number): Float32Array;
  /**
   * Logits for raw 8-bit NHWC images, normalised as recorded in the file. When the first
   * layer is binary with float input, it runs exactly on the 8 bit planes of the pixels
   * (bitplaneGemm) instead of a float GEMM: x·s = scale·(raw·s) + Σ_k offset_c(k)·s[k].
   */
  predictRaw(raw: Uint8Array, batch: number): Float32Array;
}

function unpackToSigns(packed: BigUint64Array, inputs: number, units: number): Float32Array {
  const kw = Math.ceil(inputs / 64);
  const lo = new Uint32Array(packed.buffer, packed.byteOffset, packed.length * 2);
  const out = new Float32Array(inputs * units);
  for (let c = 0; c < units; c++) {
    for (let r = 0; r < inputs; r++) {
      const bit = (lo[(c * kw + (r >> 6)) * 2 + ((r >> 5) & 1)] >>> (r & 31)) & 1;
      out[r * units + c] = bit ? -1 : 1;
    }
  }
  return out;
}

/** The packed kernel and Σ_k offset_c(k)·s[k][j] of a binary first layer, for 8-bit input. */
function prepareBitplane(dense: PreparedDense, packed: BigUint64Array, offset: number[], channels: number) {
  const { inputs, units } = dense.op;
  const signs = dense.weights ?? unpackToSigns(packed, inputs, units);
  const offsetTerm = new Float32Array(units);
  for (let k = 0; k < inputs; k++) {
    const o = offset[k % channels];
    for (let j = 0; j < units; j++) offsetTerm[j] += o * signs[k * units + j];
  }
  return { dense, offsetTerm, packed: new Int32Array(packed.buffer, packed.byteOffset, packed.length * 2) };
}

export async function loadPackedModel(file: string, addon: NativeAddon): Promise<PackedModel> {
  const f = await readSafetensors(file);
  if (f.metadata.format !== PACKED_FORMAT || !f.metadata.layout) {
    throw new CheckpointError(`${file}: not a packed bnn model (format '${f.metadata.format ?? 'none'}', expected '${PACKED_FORMAT}')`);
  }
  const layout = JSON.parse(f.metadata.layout) as PackedLayout;
  return { ...createPackedModel(layout, f.tensors, addon, file), bytes: f.bytes, sha256: f.sha256 };
}

/** A runnable packed model from its layout and tensors (as packModel or a file gives them). */
export function createPackedModel(
  layout: PackedLayout,
  tensors: Record<string, Tensor>,
  addon: NativeAddon,
  source = 'model',
): Pick<PackedModel, 'layout' | 'predict' | 'predictRaw'> {
  const file = source;
  const need = (name: string) => {
    const t = tensors[name];
    if (!t) throw new CheckpointError(`${file}: tensor '${name}' named by the layout is missing`);
    return t;
  };
  const steps: Step[] = [];
  for (const op of layout.ops) {
    if (op.kind === 'dense') {
      const d: PreparedDense = { op };
      const k = need(`${op.name}/kernel`);
      if (op.kernel === 'packed') {
        const packed = k.data as BigUint64Array;
        if (op.input === 'sign') d.packed = new Int32Array(packed.buffer, packed.byteOffset, packed.length * 2);
        else d.weights = unpackToSigns(packed, op.inputs, op.units);
      } else {
        d.weights = k.data as Float32Array;
      }
      if (op.bias) d.bias = need(`${op.name}/bias`).data as Float32Array;
      steps.push({ kind: 'dense', d });
    } else if (op.kind === 'affine') {
      steps.push({
        kind: 'affine',
        scale: need(`${op.name}/scale`).data as Float32Array,
        shift: need(`${op.name}/shift`).data as Float32Array,
      });
    } else if (op.kind === 'relu') {
      steps.push({ kind: 'relu' });
    }
  }

  const run = (x: Float32Array, batch: number, from: number): Float32Array => {
    let h = x;
    for (const s of steps.slice(from)) {
      if (s.kind === 'affine') {
        const c = s.scale.length;
        const y = h === x ? new Float32Array(h.length) : h;
        addon.batchNormApply(h, h.length / c, c, s.scale, s.shift, y);
        h = y;
      } else if (s.kind === 'relu') {
        const y = h === x ? new Float32Array(h.length) : h;
        for (let i = 0; i < h.length; i++) y[i] = h[i] > 0 ? h[i] : 0;
        h = y;
      } else {
        const { op, packed, weights, bias } = s.d;
        const out = new Float32Array(batch * op.units);
        if (packed) {
          const xp = new Int32Array(batch * Math.ceil(op.inputs / 64) * 2);
          addon.packRows(h, batch, op.inputs, xp);
          addon.xnorGemm(xp, packed, batch, op.units, op.inputs, out);
        } else {
          let a = h;
          if (op.input === 'sign') {
            a = new Float32Array(h.length);
            addon.signInto(h, a);
          }
          addon.sgemm(false, false, batch, op.units, op.inputs, 1, a, weights!, 0, out);
        }
        if (bias) for (let i = 0; i < out.length; i += op.units) for (let j = 0; j < op.units; j++) out[i + j] += bias[j];
        h = out;
      }
    }
    return h;
  };
  const predict = (x: Float32Array, batch: number) => run(x, batch, 0);

  // Present in addons built from this tree; older builds run the first layer as sgemm.
  const bitplaneGemm = (addon as Partial<{ bitplaneGemm: BitplaneGemm }>).bitplaneGemm?.bind(addon);
  const norm = layout.normalization;
  const perSample = layout.inputShape[0] * layout.inputShape[1] * layout.inputShape[2];
  const first = steps[0]?.kind === 'dense' ? steps[0].d : undefined;
  const bitplane =
    first &&
    first.op.kernel === 'packed' &&
    first.op.input === 'float' &&
    norm?.scale.every((v) => v === norm.scale[0]) &&
    typeof bitplaneGemm === 'function'
      ? prepareBitplane(first, tensors[`${first.op.name}/kernel`].data as BigUint64Array, norm.offset, layout.inputShape[2])
      : undefined;
  const predictRaw = (raw: Uint8Array, batch: number): Float32Array => {
    if (raw.length < batch * perSample) throw new RangeError(`predictRaw: ${raw.length} bytes for ${batch} samples of ${perSample}`);
    if (!bitplane || !norm) {
      if (!norm) throw new CheckpointError(`${file}: the model records no input normalisation`);
      const x = new Float32Array(batch * perSample);
      const c = norm.scale.length;
      for (let i = 0; i < x.length; i++) x[i] = raw[i] * norm.scale[i % c] + norm.offset[i % c];
      return predict(x, batch);
    }
    const { op, bias } = bitplane.dense;
    const out = new Float32Array(batch * op.units);
    bitplaneGemm!(raw.subarray(0, batch * perSample), batch, op.inputs, bitplane.packed, op.units, out);
    const scale = norm.scale[0];
    for (let i = 0; i < out.length; i += op.units) {
      for (let j = 0; j < op.units; j++) out[i + j] = out[i + j] * scale + bitplane.offsetTerm[j] + (bias ? bias[j] : 0);
    }
    return run(out, batch, 1);
  };
  return { layout, predict, predictRaw };
}
