// V8 heap tuning for training processes. A training step allocates a few MB of typed arrays
// outside the JS heap (batches, messages, small kernel outputs) on a small heap (~60 MB, mostly
// tfjs code). V8 counts that external memory towards its next major GC, so a worker ran a full
// mark-compact every ~5 steps (16 per 8 s in a 2-worker run of the example MLP), each marking the
// whole heap on the helper threads: CPU that, on a machine whose cores all train, comes out of
// the training processes. A larger heap growing factor lets the heap reach 5× its live size
// before the next major GC: none in the same 8 s, and 2-worker samples/s up about 8%.
import v8 from 'node:v8';

/** Percent the heap may grow over its live size before the next major GC (V8's default: dynamic, about 1.1–2×). */
export const TRAINING_HEAP_GROWING_PERCENT = 400;

let tuned = false;

/** Applies the training GC settings to this process once (a V8 flag read at every GC). BNN_V8_DEFAULT_GC=1 leaves V8's defaults. */
export function tuneGcForTraining(): void {
  if (tuned || process.env.BNN_V8_DEFAULT_GC === '1') return;
  tuned = true;
  v8.setFlagsFromString(`--heap-growing-percent=${TRAINING_HEAP_GROWING_PERCENT}`);
}
