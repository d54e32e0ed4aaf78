/**
 * IDX reader for the MNIST family (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
 * `00 00 <type> <rank>`, `rank` big-endian uint32 dimensions, then the payload.
 * Only unsigned-byte payloads (type 0x08) are accepted: images of rank 3, labels of rank 1.
 * Files may be gzip-compressed (detected by content, not by name).
 */
import { DataFormatError } from './errors.js';
import { allInOrder, cachedParse, readMaybeGzip } from './file.js';
import type { Split } from './types.js';

export const IDX_UBYTE = 0x08;

/** IDX element type codes (0x08 .. 0x0e in the format's description). */
const TYPE_NAMES: Record<number, string> = {
  8: 'unsigned byte',
  9: 'signed byte',
  11: 'int16',
  12: 'int32',
  13: 'float32',
  14: 'float64',
};

export interface IdxArray {
  path: string;
  /** Dimensions from the header, outermost first. */
  dims: number[];
  /** Exactly product(dims) bytes. */
  data: Uint8Array;
}

export interface IdxImages {
  n: number;
  rows: number;
  cols: number;
  /** n×rows×cols bytes, row-major. */
  pixels: Uint8Array;
}

/** What the caller expects a split's files to hold; checked after parsing. */
export interface IdxSplitExpectation {
  rows?: number;
  cols?: number;
  /** Labels must be < numClasses. */
  numClasses?: number;
  /** Data set name, for messages. */
  dataset?: string;
}

const hex = (b: number): string => b.toString(16).padStart(2, '0');
const formatDims = (dims: readonly number[]): string => dims.join('×');
const RANK_MEANING: Record<number, string> = { 1: 'labels: count', 3: 'images: count×rows×cols' };

/**
 * Parses an in-memory IDX file. `path` is only used in messages; `gzipped` says the
 * bytes were decompressed (also for messages). Throws DataFormatError.
 */
export function parseIdx(bytes: Uint8Array, path: string, expectedRank: number, payloadNoun = 'data', gzipped = false): IdxArray {
  const has = (n: number): string => `file has ${n}${gzipped ? ' (after gunzip)' : ''}`;
  const expectedMagic = `00 00 08 ${hex(expectedRank)}`;
  const meaning = RANK_MEANING[expectedRank] ? ` (${RANK_MEANING[expectedRank]})` : '';
  if (bytes.length === 0) {
    throw new DataFormatError(
      path,
      `empty file${gzipped ? ' (after gunzip)' : ''}: expected an IDX header (magic ${expectedMagic}) and ${payloadNoun}`,
    );
  }
  if (bytes.length < 4) {
    throw new DataFormatError(path, `truncated: an IDX header needs at least 4 bytes, ${has(bytes.length)}`);
  }
  const magic = [bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!];
  if (magic[0] !== 0 || magic[1] !== 0) {
    throw new DataFormatError(path, `wrong magic: not an IDX file, first bytes are ${magic.map(hex).join(' ')}, expected ${expectedMagic}`);
  }
  const typeCode = magic[2]!;
  if (typeCode !== IDX_UBYTE) {
    const typeName = TYPE_NAMES[typeCode] ?? 'unknown';
    throw new DataFormatError(path, `unsupported IDX element type 0x${hex(typeCode)} (${typeName}), expected 0x08 (unsigned byte)`);
  }
  const rank = magic[3]!;
  if (rank !== expectedRank) {
    throw new DataFormatError(path, `IDX rank is ${rank}, expected ${expectedRank}${meaning}`);
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new DataFormatError(path, `truncated: a rank-${rank} IDX header needs ${headerBytes} bytes, ${has(bytes.length)}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expectedPayload = dims.reduce((a, b) => a * b, 1);
  const actualPayload = bytes.length - headerBytes;
  if (actualPayload !== expectedPayload) {
    const says = `header says ${formatDims(dims)} = ${expectedPayload} bytes of ${payloadNoun}`;
    if (actualPayload < expectedPayload) {
      throw new DataFormatError(path, `truncated: ${says}, ${has(actualPayload)}`);
    }
    throw new DataFormatError(
      path,
      `length mismatch: ${says}, ${has(actualPayload)} (${actualPayload - expectedPayload} bytes too many); the header dimensions do not match the data`,
    );
  }
  return { path, dims, data: bytes.subarray(headerBytes) };
}

/** Reads (and caches per process) an unsigned-byte IDX file of the given rank. */
export function readIdx(path: string, expectedRank: number, payloadNoun = 'data'): Promise<IdxArray> {
  return cachedParse(path, `idx${expectedRank}`, async () => {
    const { bytes, gzipped } = await readMaybeGzip(path);
    return parseIdx(bytes, path, expectedRank, payloadNoun, gzipped);
  });
}

/** Reads an IDX image file (rank 3: count×rows×cols). */
export async function readIdxImages(path: string): Promise<IdxImages> {
  const arr = await readIdx(path, 3, 'pixels');
  const [n, rows, cols] = arr.dims as [number, number, number];
  if (rows === 0 || cols === 0) {
    throw new DataFormatError(path, `images are ${rows}×${cols}, expected both dimensions ≥ 1`);
  }
  return { n, rows, cols, pixels: arr.data };
}

/** Reads an IDX label file (rank 1), checking every label is < numClasses when given. */
export async function readIdxLabels(path: string, numClasses?: number): Promise<Uint8Array> {
  const labels = (await readIdx(path, 1, 'labels')).data;
  if (numClasses !== undefined) checkLabels(labels, numClasses, path);
  return labels;
}

/** Throws DataFormatError naming the first label ≥ numClasses. */
export function checkLabels(labels: Uint8Array, numClasses: number, path: string, what = 'index'): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= numClasses) {
      throw new DataFormatError(path, `label ${labels[i]} at ${what} ${i} is out of range, expected 0..${numClasses - 1}`);
    }
  }
}

/**
 * Reads an images/labels pair into a Split (HWC with C = 1), checking that the counts
 * agree and, when given, the image size and label range.
 */
export async function readIdxSplit(
  imagesPath: string,
  labelsPath: string,
  expect: IdxSplitExpectation = {},
): Promise<Split & { rows: number; cols: number }> {
  const [images, labels] = await allInOrder([readIdxImages(imagesPath), readIdxLabels(labelsPath, expect.numClasses)] as const);
  const forDataset = expect.dataset ? ` for ${expect.dataset}` : '';
  if ((expect.rows !== undefined && images.rows !== expect.rows) || (expect.cols !== undefined && images.cols !== expect.cols)) {
    throw new DataFormatError(
      imagesPath,
      `images are ${images.rows}×${images.cols}, expected ${expect.rows ?? images.rows}×${expect.cols ?? images.cols}${forDataset}`,
    );
  }
  if (labels.length !== images.n) {
    throw new DataFormatError(
      labelsPath,
      `holds ${labels.length} labels but ${imagesPath} holds ${images.n} images; expected one label per image`,
    );
  }
  return { images: images.pixels, labels, n: images.n, rows: images.rows, cols: images.cols };
}
