import { addCheckpoint } from '../store/checkpoints.js';
import { openStore } from '../store/db.js';
import { addEvent } from '../store/events.js';
import { addEpochMetrics } from '../store/metrics.js';
import { createRun, finishRun, markRunning } from '../store/runs.js';
import type { RunRow } from '../store/schema.js';
import { defaultRunConfig, type Precision } from '../config/schema.js';

/**
 * For tests only: a real experiment database with a known set of runs, written through the
 * store API (createRun → markRunning → finishRun, addEpochMetrics), then closed.
 */

/** Final test accuracies of the COMPLETED runs by precision (Welch reference in the tests). */
export const FIXTURE_ACCS = {
  fp32: [0.905, 0.907, 0.903, 0.908, 0.906],
  binary: [0.891, 0.894, 0.889, 0.893, 0.89],
  xnor: [0.85],
} as const satisfies Partial<Record<Precision, readonly number[]>>;

/** Test accuracies per epoch of the run returned as `detailed`. */
export const FIXTURE_EPOCH_ACCS = [0.8, 0.85, null, 0.88, 0.891];

export interface Fixture {
  /** Every run in creation order. */
  runs: RunRow[];
  /** The first binary run: 5 epochs, a checkpoint and an extra event. */
  detailed: RunRow;
  failed: RunRow;
  running: RunRow;
}

export function buildFixtureStore(file: string): Fixture {
  const store = openStore(file);
  try {
    const { db } = store;
    const all: RunRow[] = [];
    let minute = 0;
    const make = (precision: Precision, seed: number, name: string, tags: string[]) => {
      const now = new Date(Date.UTC(2025, 0, 10 + Math.floor(minute / 10), 12, minute % 10));
      minute++;
      const config = { ...defaultRunConfig(), name, tags, seed };
      config.model = { ...config.model, precision };
      const run = createRun(db, { config, codeVersion: '0.1.0+gtest', now });
      markRunning(db, run.id, { backend: 'cpu', threads: 2, now: new Date(now.getTime() + 1000) });
      return run;
    };
    const finish = (id: string, acc: number, i: number, precision: Precision, packed: boolean) =>
      finishRun(
        db,
        id,
        'COMPLETED',
        {
          finalTestAcc: acc,
          bestTestAcc: acc + 0.001,
          modelSizeBytes: 4_000_000,
          packedSizeBytes: packed ? 130_000 : null,
          wallTimeS: 100 + i,
          samplesPerS: precision === 'fp32' ? 5000 + 10 * i : 7000 + 10 * i,
        },
        new Date(Date.UTC(2025, 1, 1, 0, 0, i)),
      );

    let detailed: RunRow | undefined;
    for (const precision of ['fp32', 'binary', 'xnor'] as const) {
      FIXTURE_ACCS[precision].forEach((acc, i) => {
        const run = make(precision, i, `fmnist-${precision}`, i === 0 ? ['paper', 'table2'] : ['paper']);
        if (precision === 'binary' && i === 0) {
          FIXTURE_EPOCH_ACCS.forEach((testAcc, e) => {
            addEpochMetrics(db, run.id, {
              epoch: e + 1,
              trainLoss: 1 / (e + 1),
              trainAcc: 0.7 + 0.05 * e,
              testLoss: testAcc === null ? null : 0.5 - 0.05 * e,
              testAcc,
              lr: 0.001 / (e + 1),
              samplesPerS: 7000,
              epochTimeS: 8.5,
            });
          });
          addCheckpoint(db, {
            runId: run.id,
            epoch: 5,
            step: 500,
            path: 'runs/ckpt/epoch-5.safetensors',
            sha256: 'ab'.repeat(32),
            bytes: 131_072,
            now: new Date(Date.UTC(2025, 0, 20)),
          });
          addEvent(db, { runId: run.id, kind: 'checkpointed', detail: { epoch: 5 }, at: new Date(Date.UTC(2025, 0, 20)) });
        }
        all.push(finish(run.id, acc, i, precision, precision !== 'fp32'));
        if (precision === 'binary' && i === 0) detailed = all.at(-1);
      });
    }
    const failedRun = make('binary', 9, 'mnist-crash', []);
    const failed = finishRun(db, failedRun.id, 'FAILED', { error: 'out of memory' }, new Date(Date.UTC(2025, 1, 2)));
    all.push(failed);
    const running = make('int8', 1, 'cifar-int8-long', ['wip']);
    all.push(running);
    return { runs: all, detailed: detailed!, failed, running };
  } finally {
    store.close();
  }
}
