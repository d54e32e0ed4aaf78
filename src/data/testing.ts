/**
 * Fixture writers for tests (here and in other packages): small files in the real
 * on-disk formats, so code under test goes through the same readers as real data.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { IDX_FILES } from './registry.js';

/** An unsigned-byte IDX file: 00 00 08 <rank>, big-endian uint32 dims, payload. */
export function encodeIdx(dims: readonly number[], payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + payload.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  out.set(payload, 4 + 4 * dims.length);
  return out;
}

export interface FakeIdxDatasetOptions {
  trainN?: number;
  testN?: number;
  rows?: number;
  cols?: number;
  numClasses?: number;
  gzip?: boolean;
}

/**
 * Writes the four MNIST-family files into `dir` (created). Pixel of sample i at
 * position j is (i + j) mod 256; label of sample i is i mod numClasses.
 */
export function writeFakeIdxDataset(dir: string, options: FakeIdxDatasetOptions = {}): void {
  const { trainN = 20, testN = 10, rows = 28, cols = 28, numClasses = 10, gzip = true } = options;
  mkdirSync(dir, { recursive: true });
  const write = (base: string, bytes: Uint8Array): void =>
    writeFileSync(join(dir, gzip ? `${base}.gz` : base), gzip ? gzipSync(bytes) : bytes);
  const split = (n: number, imagesBase: string, labelsBase: string): void => {
    const pixels = new Uint8Array(n * rows * cols);
    for (let i = 0; i < n; i++) for (let j = 0; j < rows * cols; j++) pixels[i * rows * cols + j] = (i + j) % 256;
    const labels = Uint8Array.from({ length: n }, (_, i) => i % numClasses);
    write(imagesBase, encodeIdx([n, rows, cols], pixels));
    write(labelsBase, encodeIdx([n], labels));
  };
  split(trainN, IDX_FILES.trainImages, IDX_FILES.trainLabels);
  split(testN, IDX_FILES.testImages, IDX_FILES.testLabels);
}
