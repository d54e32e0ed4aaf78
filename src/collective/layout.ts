/** One chunk of a step: a contiguous run of the flat vector, owned by shard `shard`. */
export interface ChunkSpec {
  shard: number;
  /** Index among the chunks of this shard in this step (the `<c>` subject token). */
  index: number;
  bucket: number;
  /** Start in the flat vector. */
  offset: number;
  length: number;
}

export interface StepLayout {
  totalLength: number;
  bucketOffsets: number[];
  bucketLengths: number[];
  /** chunksByShard[s][c] */
  chunksByShard: ChunkSpec[][];
  /** Chunks of each bucket, in flat order. */
  chunksByBucket: ChunkSpec[][];
}

/**
 * Cuts each bucket into `worldSize` owner shards (shard s of a bucket of length L is
 * [⌊sL/N⌋, ⌊(s+1)L/N⌋)) and each shard into chunks of at most `chunkElements`. Chunk indices
 * run per shard over the buckets in order, so every rank derives the same subjects.
 */
export function planLayout(bucketLengths: readonly number[], worldSize: number, chunkElements: number): StepLayout {
  const chunksByShard: ChunkSpec[][] = Array.from({ length: worldSize }, () => []);
  const chunksByBucket: ChunkSpec[][] = [];
  const bucketOffsets: number[] = [];
  let offset = 0;
  bucketLengths.forEach((len, bucket) => {
    bucketOffsets.push(offset);
    const mine: ChunkSpec[] = [];
    for (let s = 0; s < worldSize; s++) {
      const start = offset + Math.floor((s * len) / worldSize);
      const end = offset + Math.floor(((s + 1) * len) / worldSize);
      const list = chunksByShard[s] as ChunkSpec[];
      for (let a = start; a < end; a += chunkElements) {
        const spec: ChunkSpec = { shard: s, index: list.length, bucket, offset: a, length: Math.min(chunkElements, end - a) };
        list.push(spec);
        mine.push(spec);
      }
    }
    chunksByBucket.push(mine);
    offset += len;
  });
  return { totalLength: offset, bucketOffsets, bucketLengths: [...bucketLengths], chunksByShard, chunksByBucket };
}
