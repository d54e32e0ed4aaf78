// The results sink of a cluster worker: epochs and checkpoints go to the coordinator over RPC
// (it writes the experiment database), steps to the progress reporter (the monitor's view).
import type { CoordinatorClient, MetricsReport } from '../src/rpc/index.js';
import type { GroupView } from '../src/train/collective.js';
import type { TrainingSink } from '../src/train/sink.js';
import type { ProgressReporter } from './progress.js';
import type { LogLine } from '../src/util/log.js';

export interface ReportSinkDeps {
  client: Pick<CoordinatorClient, 'reportMetrics' | 'reportCheckpoint'>;
  workerId: string;
  runId: string;
  /** This rank's place now: reports carry the generation and rank it holds when they are sent. */
  group(): GroupView;
  progress: ProgressReporter;
  log: LogLine;
}

/** Sends `m` as this worker's report in the run. */
export function reporter(d: Omit<ReportSinkDeps, 'progress' | 'log'>): (m: Partial<MetricsReport>) => Promise<void> {
  return async (m) => {
    const g = d.group();
    await d.client.reportMetrics({ ...m, worker_id: d.workerId, run_id: d.runId, generation: g.generation, rank: g.rank });
  };
}

export function reportSink(d: ReportSinkDeps): TrainingSink {
  const report = reporter(d);
  return {
    step: (s) => d.progress.stepDone(s.seconds, s.samples, s.step),
    epoch: async (e) => {
      const { test } = e;
      await report({
        epoch: e.epoch,
        train_loss: e.trainLoss,
        train_acc: e.trainAcc,
        test_loss: test ? test.loss : -1,
        test_acc: test ? test.accuracy : -1,
        lr: e.lr,
        samples_per_s: e.samplesPerS,
        epoch_time_s: e.epochTimeS,
        steps: e.steps,
        skipped_steps: e.skippedSteps,
      });
      d.log(
        `epoch ${e.epoch}/${e.epochs} loss ${e.trainLoss.toFixed(4)} acc ${e.trainAcc.toFixed(4)}` +
          (test ? ` test acc ${test.accuracy.toFixed(4)}` : '') +
          (e.skippedSteps ? ` (${e.skippedSteps} step(s) skipped: NaN or Inf)` : ''),
      );
    },
    // Unrecorded, the file is merely unused by a resume; training goes on.
    checkpoint: async (c) => {
      const g = d.group();
      await d.client
        .reportCheckpoint({ ...c, worker_id: d.workerId, run_id: d.runId, generation: g.generation, rank: g.rank })
        .catch((err: Error) => d.log(`checkpoint ${c.path} not recorded: ${err.message}`, 'warn'));
    },
    log: d.log,
  };
}
