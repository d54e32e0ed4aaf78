// How `bnn bench scaling` gives N workers a batch (see scaling.ts); apart so the CLI can
// validate flags without loading the benchmark.
export type BatchMode = 'global' | 'per-worker';
export const BATCH_MODES: readonly BatchMode[] = ['global', 'per-worker'];
