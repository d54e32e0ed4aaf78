// Recycles large float32 kernel outputs of the native backend. A fresh 16 MB typed array
// costs page faults and zeroing on every step; a training step allocates the same sizes
// again and again. Only arrays handed out here are ever recycled, and only when tfjs
// releases their last reference (so shared or cached arrays never come back).
const MIN_ELEMENTS = 1 << 14;
const MAX_POOLED_BYTES = 512 * 1024 * 1024;

const free = new Map<number, Float32Array[]>();
const issued = new WeakSet<Float32Array>();
let pooledBytes = 0;

/** A float32 array of `n` elements with unspecified contents: callers overwrite every element. */
export function allocF32(n: number): Float32Array {
  if (n < MIN_ELEMENTS) return new Float32Array(n);
  const list = free.get(n);
  const hit = list?.pop();
  if (hit) {
    pooledBytes -= hit.byteLength;
    return hit;
  }
  const fresh = new Float32Array(n);
  issued.add(fresh);
  return fresh;
}

/** Takes back an array whose data tfjs has released; ignores arrays not issued here. */
export function releaseF32(values: unknown): void {
  if (!(values instanceof Float32Array) || !issued.has(values)) return;
  if (pooledBytes + values.byteLength > MAX_POOLED_BYTES) return;
  let list = free.get(values.length);
  if (!list) {
    list = [];
    free.set(values.length, list);
  }
  list.push(values);
  pooledBytes += values.byteLength;
}

export function poolStats(): { pooledBytes: number; sizes: number } {
  return { pooledBytes, sizes: free.size };
}
