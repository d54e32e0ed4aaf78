/**
 * One split of a data set. Arrays may be shared with the per-process cache (treat them as
 * read-only) and may be views with a non-zero byteOffset into a larger buffer.
 */
export interface Split {
  /** N×H×W×C row-major (HWC per sample), raw uint8 pixels. */
  images: Uint8Array;
  /** N class indices, each < numClasses. */
  labels: Uint8Array;
  /** Number of samples. */
  n: number;
}

export interface Dataset {
  name: string;
  shape: [h: number, w: number, c: number];
  numClasses: number;
  classNames: string[];
  train: Split;
  test: Split;
  /** Directory the files were read from, or 'synthetic'. */
  source: string;
}
