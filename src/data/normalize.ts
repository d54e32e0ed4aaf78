/**
 * Pixel normalisation as a per-channel affine map: x = fround(raw·scale[c] + offset[c]),
 * evaluated in double and rounded once to float32. Keeping it affine lets 8-bit inference
 * fold it into the first layer exactly.
 */
import { DataOptionError } from './errors.js';
import type { Dataset, Split } from './types.js';

export const NORMALIZATION_MODES = ['none', 'unit', 'standard', 'pm1'] as const;
export type NormalizationMode = (typeof NORMALIZATION_MODES)[number];

export interface Normalization {
  mode: NormalizationMode;
  /** One entry per channel. */
  scale: Float32Array;
  /** One entry per channel. */
  offset: Float32Array;
}

export interface ChannelStats {
  mean: Float64Array;
  /** Population standard deviation. */
  std: Float64Array;
}

/** Exact per-channel mean and standard deviation of uint8 HWC images (via a histogram). */
export function channelStats(images: Uint8Array, channels: number): ChannelStats {
  if (!Number.isInteger(channels) || channels < 1 || images.length % channels !== 0) {
    throw new RangeError(`channelStats: ${images.length} bytes do not split into ${channels} channels`);
  }
  const hist = new Float64Array(256 * channels);
  if (channels === 1) {
    for (let i = 0; i < images.length; i++) hist[images[i]!]!++;
  } else {
    for (let i = 0; i < images.length; i += channels) {
      for (let c = 0; c < channels; c++) hist[c * 256 + images[i + c]!]!++;
    }
  }
  const mean = new Float64Array(channels);
  const std = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let count = 0;
    let sum = 0;
    let sumSq = 0;
    for (let v = 0; v < 256; v++) {
      const k = hist[c * 256 + v]!;
      count += k;
      sum += k * v;
      sumSq += k * v * v;
    }
    const m = count === 0 ? 0 : sum / count;
    mean[c] = m;
    std[c] = count === 0 ? 0 : Math.sqrt(Math.max(0, sumSq / count - m * m));
  }
  return { mean, std };
}

/**
 * The affine map for `mode`. `standard` uses per-channel statistics of the data set's
 * training images (pass a subset's Dataset to use the subset's); a constant channel
 * (std 0) gets scale 1 so it maps to 0 rather than to infinity.
 */
export function computeNormalization(dataset: Pick<Dataset, 'shape' | 'train'>, mode: NormalizationMode): Normalization {
  const channels = dataset.shape[2];
  const scale = new Float32Array(channels);
  const offset = new Float32Array(channels);
  switch (mode) {
    case 'none':
      scale.fill(1);
      break;
    case 'unit':
      scale.fill(1 / 255);
      break;
    case 'pm1':
      scale.fill(1 / 127.5);
      offset.fill(-1);
      break;
    case 'standard': {
      const { mean, std } = channelStats(dataset.train.images, channels);
      for (let c = 0; c < channels; c++) {
        const s = std[c]! > 0 ? std[c]! : 1;
        scale[c] = 1 / s;
        offset[c] = -mean[c]! / s;
      }
      break;
    }
    default:
      throw new DataOptionError(
        'normalization',
        `unknown normalization ${JSON.stringify(mode)}; valid modes: ${NORMALIZATION_MODES.join(', ')}`,
      );
  }
  return { mode, scale, offset };
}

/** The 256·C float32 values the map takes, index c·256 + raw. */
export function normalizationTable(norm: Normalization): Float32Array {
  const channels = norm.scale.length;
  const table = new Float32Array(256 * channels);
  for (let c = 0; c < channels; c++) {
    const s = norm.scale[c]!;
    const o = norm.offset[c]!;
    for (let v = 0; v < 256; v++) table[c * 256 + v] = v * s + o;
  }
  return table;
}

/**
 * Writes samples `indices` of `split` as normalised NHWC floats into `out` (from 0) and
 * their labels into `labelsOut`. Buffers may be longer than the batch (a reused buffer
 * for a shorter last batch); only the first indices.length samples are written.
 */
export function fillBatch(split: Split, indices: ArrayLike<number>, norm: Normalization, out: Float32Array, labelsOut?: Int32Array): void {
  const channels = norm.scale.length;
  const per = split.n === 0 ? 0 : split.images.length / split.n;
  if (channels < 1 || norm.offset.length !== channels || per % channels !== 0) {
    throw new RangeError(
      `fillBatch: normalization has ${norm.scale.length} scales / ${norm.offset.length} offsets, samples have ${per} values`,
    );
  }
  const batch = indices.length;
  if (out.length < batch * per) {
    throw new RangeError(`fillBatch: out holds ${out.length} floats, batch of ${batch} needs ${batch * per}`);
  }
  if (labelsOut && labelsOut.length < batch) {
    throw new RangeError(`fillBatch: labelsOut holds ${labelsOut.length}, batch needs ${batch}`);
  }
  const table = normalizationTable(norm);
  const images = split.images;
  let k = 0;
  for (let b = 0; b < batch; b++) {
    const i = indices[b]!;
    if (!(i >= 0 && i < split.n) || !Number.isInteger(i)) {
      throw new RangeError(`fillBatch: index ${i} at position ${b} is outside 0..${split.n - 1}`);
    }
    const base = i * per;
    if (channels === 1) {
      for (let j = 0; j < per; j++) out[k++] = table[images[base + j]!]!;
    } else {
      for (let j = 0; j < per; j += channels) {
        for (let c = 0; c < channels; c++) out[k++] = table[c * 256 + images[base + j + c]!]!;
      }
    }
    if (labelsOut) labelsOut[b] = split.labels[i]!;
  }
}
