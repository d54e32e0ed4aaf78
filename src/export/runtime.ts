// Inference on a packed model without tfjs: XNOR-popcount GEMM where both operands are
// binary, OpenBLAS sgemm for the float products, plain loops for the rest.
import { readSafetensors, CheckpointError, type Tensor } from '../checkpoint/index.js';
import type { NativeAddon } from '../native/addon.js';
import { PACKED_FORMAT, type PackedLayout, type PackedOp } from './packed.js';

type DenseOp = PackedOp & { kind: 'dense' };

interface PreparedDense {
  op: DenseOp;
  /** XNOR path: packed kernel as the addon's Int32Array view. */
  packed?: Int32Array;
  /** Float path: kernel [inputs][units] (±1 for a packed kernel with float inputs). */
  weights?: Float32Array;
  bias?: Float32Array;
}

type Step =
  | { kind: 'dense'; d: PreparedDense }
  | { kind: 'affine'; scale: Float32Array; shift: Float32Array }
  | { kind: 'relu' };

export interface PackedModel {
  layout: PackedLayout;
  bytes: number;
  sha256: string;
  /** Logits [batch][numClasses] for normalised NHWC input [batch][h·w·c]. */
  predict(x: Float32Array, batch: number): Float32Array;
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

export async function loadPackedModel(file: string, addon: NativeAddon): Promise<PackedModel> {
  const f = await readSafetensors(file);
  if (f.metadata.format !== PACKED_FORMAT || !f.metadata.layout) {
    throw new CheckpointError(`${file}: not a packed bnn model (format '${f.metadata.format ?? 'none'}', expected '${PACKED_FORMAT}')`);
  }
  const layout = JSON.parse(f.metadata.layout) as PackedLayout;
  return { ...createPackedModel(layout, f.tensors, addon, file), bytes: f.bytes, sha256: f.sha256 };
}

/** A runnable packed model from its layout and tensors (as packModel or a file gives them). */
export function createPackedModel(layout: PackedLayout, tensors: Record<string, Tensor>, addon: NativeAddon, source = 'model'):
  Pick<PackedModel, 'layout' | 'predict'> {
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
      steps.push({ kind: 'affine', scale: need(`${op.name}/scale`).data as Float32Array, shift: need(`${op.name}/shift`).data as Float32Array });
    } else if (op.kind === 'relu') {
      steps.push({ kind: 'relu' });
    }
  }

  const predict = (x: Float32Array, batch: number): Float32Array => {
    let h = x;
    for (const s of steps) {
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
  return { layout, predict };
}
