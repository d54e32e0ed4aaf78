/**
 * Deterministic batching: the order of epoch e is a pure function of (seed, e), so a
 * run resumed from a saved cursor {epoch, step} sees exactly the batches it would have.
 */
import { Rng } from '../util/rng.js';
import { DataOptionError } from './errors.js';

/** A random permutation of 0..n-1, the same for the same (seed, epoch). */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  checkInt('n', n, 0);
  checkInt('epoch', epoch, 0);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  return Rng.derive(seed, 'epoch-permutation', epoch).shuffleInPlace(perm);
}

function checkInt(option: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new DataOptionError(option, `${option} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  }
}

export interface BatchCursorOptions {
  /** Number of samples in the split being iterated. */
  n: number;
  /** Samples per batch (the global batch, before sharding). */
  batchSize: number;
  /** Seed of the epoch permutations. */
  seed: number;
  /** Drop the last batch of an epoch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
}

/** Position of the next batch; plain numbers, JSON-safe. */
export interface CursorState {
  epoch: number;
  step: number;
}

export interface Batch {
  epoch: number;
  step: number;
  /** Sample indices of this batch (a fresh array). */
  indices: Uint32Array;
}

/**
 * Iterates batches over (epoch, step). `next()` never ends (epochs roll over);
 * `remainingInEpoch()` yields up to the end of the current epoch. Resuming needs the same
 * options as the run that saved the state.
 */
export class BatchCursor {
  readonly n: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Batches per epoch. */
  readonly stepsPerEpoch: number;
  private epoch = 0;
  private step = 0;
  private perm: Uint32Array | undefined;
  private permEpoch = -1;

  constructor(options: BatchCursorOptions, state: CursorState = { epoch: 0, step: 0 }) {
    checkInt('n', options.n, 1);
    checkInt('batchSize', options.batchSize, 1);
    checkInt('seed', options.seed, Number.MIN_SAFE_INTEGER);
    this.n = options.n;
    this.batchSize = options.batchSize;
    this.seed = options.seed;
    this.dropLast = options.dropLast ?? false;
    this.stepsPerEpoch = this.dropLast ? Math.floor(this.n / this.batchSize) : Math.ceil(this.n / this.batchSize);
    if (this.stepsPerEpoch === 0) {
      throw new DataOptionError(
        'batchSize',
        `batchSize ${this.batchSize} is larger than the ${this.n} samples and dropLast is set, so an epoch has no batches`,
      );
    }
    this.setState(state);
  }

  getState(): CursorState {
    return { epoch: this.epoch, step: this.step };
  }

  setState(state: CursorState): void {
    checkInt('cursor.epoch', state.epoch, 0);
    checkInt('cursor.step', state.step, 0);
    if (state.step >= this.stepsPerEpoch) {
      throw new DataOptionError(
        'cursor.step',
        `cursor.step ${state.step} is past the end of an epoch (steps 0..${this.stepsPerEpoch - 1} for n=${this.n}, batchSize=${this.batchSize}, dropLast=${this.dropLast})`,
      );
    }
    this.epoch = state.epoch;
    this.step = state.step;
  }

  /** The batch at the cursor; advances the cursor. */
  next(): Batch {
    if (this.permEpoch !== this.epoch) {
      this.perm = epochPermutation(this.n, this.seed, this.epoch);
      this.permEpoch = this.epoch;
    }
    const start = this.step * this.batchSize;
    const end = Math.min(start + this.batchSize, this.n);
    const batch: Batch = { epoch: this.epoch, step: this.step, indices: this.perm!.slice(start, end) };
    if (++this.step === this.stepsPerEpoch) {
      this.step = 0;
      this.epoch++;
    }
    return batch;
  }

  /** Yields the batches left in the current epoch; afterwards the cursor is at (epoch + 1, 0). */
  *remainingInEpoch(): Generator<Batch, void, undefined> {
    const epoch = this.epoch;
    while (this.epoch === epoch) yield this.next();
  }
}

/** [start, end) of rank's contiguous share of `total` items; shares differ by at most 1, larger first. */
export function shardRange(total: number, rank: number, worldSize: number): { start: number; end: number } {
  checkInt('worldSize', worldSize, 1);
  checkInt('total', total, 0);
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new DataOptionError('rank', `rank must be an integer in 0..${worldSize - 1}, got ${JSON.stringify(rank)}`);
  }
  const base = Math.floor(total / worldSize);
  const extra = total % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return { start, end: start + base + (rank < extra ? 1 : 0) };
}

/**
 * Rank's contiguous part of one global batch (a view, not a copy). Shares differ by at
 * most 1 and can be empty when the batch has fewer samples than workers; weight gradients
 * by share size when averaging.
 */
export function shardIndices(batchIndices: Uint32Array, rank: number, worldSize: number): Uint32Array {
  const { start, end } = shardRange(batchIndices.length, rank, worldSize);
  return batchIndices.subarray(start, end);
}
