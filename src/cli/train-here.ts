// `bnn train`: the embedded driver of the training loop. One process, no broker: the solo
// collective, the store sink (the run recorded in the experiment database) and progress on
// stderr; Ctrl-C or SIGTERM stops at the next step boundary, checkpointed, as CANCELLED.
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import type { RunConfig } from '../config/index.js';
import { fp32SizeBytes } from '../bnn/models.js';
import { checkCheckpointDir } from '../checkpoint/directory.js';
import { removeTempFiles } from '../checkpoint/safetensors.js';
import { initEngine, type EngineInfo } from '../engine/select.js';
import { packedSizeBytes } from '../export/packed.js';
import { soloCollective } from '../train/collective.js';
import { TrainingStoppedError } from '../train/errors.js';
import { runTrainingLoop } from '../train/loop.js';
import { prepareTraining, type TrainingSetup } from '../train/setup.js';
import { teeSink, type TrainingSink } from '../train/sink.js';
import { StoreRun } from '../train/store-sink.js';
import { onStopSignals, signalExitCode, type StopSignal } from '../util/signals.js';
import type { Logger } from '../util/log.js';
import type { CliIO } from './command.js';
import { createEpochProgress, type EpochProgress } from './progress.js';

export interface TrainOptions {
  json: boolean;
  quiet: boolean;
  configPath?: string;
  /** How long to wait for another process's lock on the store. */
  lockTimeoutMs?: number;
  /** Where the run's lines go (stderr, the command's `--log-format`); progress bars stay on `io.stderr`. */
  log: Logger;
}

export interface TrainSummary {
  runId: string;
  name: string;
  precision: string;
  arch: string;
  seed: number;
  backend: string;
  threads: number;
  epochs: number;
  /** Optimizer steps done (where a cancelled run stopped, and was checkpointed). */
  steps: number;
  finalTestAcc: number | null;
  bestTestAcc: number | null;
  samplesPerS: number;
  wallTimeS: number;
  modelSizeBytes: number;
  packedSizeBytes: number | null;
  status: 'COMPLETED' | 'CANCELLED';
  /** Energy of the run in joules (null if it could not be measured or estimated). */
  energyJ: number | null;
  /** Where energyJ came from: `rapl`, `nvml+rapl`, ... or `estimate` (CPU time × assumed watts per core). */
  energySource: string | null;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * Trains `config` in this process and records the run. Returns the exit code: 0 completed; 130
 * (SIGINT, Ctrl-C) or 143 (SIGTERM) when a stop signal cancelled it; failures throw. A second
 * signal records the run CANCELLED and exits at once (with the same code of that signal).
 */
export async function trainHere(config: RunConfig, opts: TrainOptions, io: CliIO): Promise<number> {
  const warn = (m: string) => opts.log.warn(m);
  // Everything that can fail is checked before the run is recorded (a failure here writes no
  // row): the engine, the data set and model, the checkpoint directory, then the store opened.
  const engine = await initEngine({ backend: config.engine.backend, threads: config.engine.threads, warn });
  const setup = await prepareTraining(config);
  try {
    const checkpointRoot = checkCheckpointDir(config.checkpointDir);
    if (config.checkpointStore === 'nats')
      warn(`bnn: checkpointStore: nats is for cluster runs (bnn launch); bnn train writes its checkpoints under ${checkpointRoot}`);
    const run = await StoreRun.open(config, {
      ...(opts.configPath ? { configPath: opts.configPath } : {}),
      backend: engine.backend,
      threads: engine.threads,
      ...(opts.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: opts.lockTimeoutMs }),
      warn,
    });
    try {
      return await trainRecorded(run, setup, { engine, checkpointDir: path.join(checkpointRoot, run.runId), opts, io });
    } catch (err) {
      // From the row on, any failure ends the run FAILED with its reason (nothing once it has ended).
      await run.fail(err);
      throw err;
    }
  } finally {
    setup.model.dispose();
  }
}

interface RecordedRunContext {
  engine: EngineInfo;
  checkpointDir: string;
  opts: TrainOptions;
  io: CliIO;
}

/** The loop of a recorded run, its end recorded (COMPLETED, or CANCELLED by SIGINT/SIGTERM) and its summary printed. */
async function trainRecorded(
  run: StoreRun,
  setup: TrainingSetup,
  { engine, checkpointDir, opts, io }: RecordedRunContext,
): Promise<number> {
  const { config } = setup;
  const display = progressSink(config, !opts.quiet && !opts.json, io, opts.log);
  display.log(
    `bnn: run ${run.runId} (${config.name}): ${config.model.arch} ${config.model.precision} on ${setup.dataset.name} ` +
      `(${setup.train.n} train / ${setup.dataset.test.n} test), backend ${engine.backend}${engine.kernel ? ` [${engine.kernel}]` : ''}, ` +
      `${engine.threads} thread(s), seed ${config.seed}`,
  );
  // set by a signal handler (a cast, so that the compiler does not take it for null below)
  let stop = null as { reason: string; signal: StopSignal } | null;
  const removeSignals = onStopSignals({
    first: (signal) => {
      stop = { reason: `interrupted (${signal})`, signal };
      display.log(`bnn: ${signal}: stopping at the next step boundary (again: leave at once)`);
    },
    // a second signal: leave now, the run recorded and no half-written checkpoint left behind
    again: (signal) => {
      display.close();
      run.cancelNow(`${stop?.reason ?? `interrupted (${signal})`}; left at once on a second ${signal}`);
      removeTempFiles(checkpointDir);
      process.exit(signalExitCode(signal));
    },
  });
  // until the end is recorded: a second signal while it is written still records it and leaves
  try {
    const t0 = performance.now();
    let status: TrainSummary['status'] = 'COMPLETED';
    try {
      mkdirSync(checkpointDir, { recursive: true });
      await runTrainingLoop(setup, soloCollective(), teeSink(run, display), {
        runId: run.runId,
        checkpointDir,
        checkStop: () => {
          if (stop !== null) throw new TrainingStoppedError(stop.reason);
        },
      });
    } catch (err) {
      if (!(err instanceof TrainingStoppedError)) throw err;
      status = 'CANCELLED';
    } finally {
      display.close();
      removeTempFiles(checkpointDir);
    }
    const o = { status, wallTimeS: (performance.now() - t0) / 1000, backend: engine.backend, threads: engine.threads };
    printSummary(await finish(run, setup, { ...o, reason: stop?.reason ?? null }), opts, io);
    return status === 'COMPLETED' ? 0 : signalExitCode(stop?.signal ?? 'SIGINT');
  } finally {
    removeSignals();
  }
}

async function finish(
  run: StoreRun,
  setup: TrainingSetup,
  o: { status: TrainSummary['status']; wallTimeS: number; backend: string; threads: number; reason: string | null },
): Promise<TrainSummary> {
  const { config, model } = setup;
  const sizes = { modelSizeBytes: fp32SizeBytes(model), packedSizeBytes: packedSizeBytes(model) };
  const energy = await run.finish({ status: o.status, wallTimeS: o.wallTimeS, ...sizes, ...(o.reason ? { reason: o.reason } : {}) });
  return {
    runId: run.runId,
    name: config.name,
    precision: config.model.precision,
    arch: config.model.arch,
    seed: config.seed,
    backend: o.backend,
    threads: o.threads,
    epochs: config.train.epochs,
    steps: run.steps,
    finalTestAcc: run.tally.finalTestAcc,
    bestTestAcc: run.tally.bestTestAcc,
    samplesPerS: run.tally.samplesPerS ?? 0,
    wallTimeS: o.wallTimeS,
    ...sizes,
    status: o.status,
    energyJ: energy.joules,
    energySource: energy.source,
  };
}

function printSummary(s: TrainSummary, opts: TrainOptions, io: CliIO): void {
  if (opts.json) io.stdout.write(`${JSON.stringify(s)}\n`);
  else if (!opts.quiet) {
    const acc = s.finalTestAcc === null ? 'n/a' : pct(s.finalTestAcc);
    io.stdout.write(
      s.status === 'COMPLETED'
        ? `final test accuracy: ${acc} (run ${s.runId}, ${s.precision}, seed ${s.seed}, ${Math.round(s.samplesPerS).toLocaleString('en-US')} samples/s, ${s.wallTimeS.toFixed(1)} s)\n`
        : `run ${s.runId} cancelled at step ${s.steps} after ${s.wallTimeS.toFixed(1)} s; final test accuracy: ${acc}\n`,
    );
  }
}

/** A bar per epoch and a line at its end on stderr (nothing when not `enabled`). */
function progressSink(config: RunConfig, enabled: boolean, io: CliIO, log: Logger): TrainingSink & { close(): void } {
  let bar: EpochProgress | null = null;
  let barEpoch = 0;
  const say = (line: string) => {
    if (enabled) log.info(line);
  };
  return {
    step: (s) => {
      if (s.epoch !== barEpoch) {
        bar?.stop();
        bar = createEpochProgress({ epoch: s.epoch, epochs: config.train.epochs, total: s.stepsPerEpoch, enabled, stream: io.stderr });
        barEpoch = s.epoch;
      }
      bar!.update(s.stepInEpoch, { loss: s.epochLoss, accuracy: s.epochAccuracy, samplesPerS: s.epochSamplesPerS });
    },
    epoch: async (e) => {
      bar?.stop();
      bar = null;
      say(
        `epoch ${e.epoch}/${e.epochs}  train loss ${e.trainLoss.toFixed(4)} acc ${pct(e.trainAcc)}` +
          (e.test ? `  test loss ${e.test.loss.toFixed(4)} acc ${pct(e.test.accuracy)}` : '') +
          `  ${Math.round(e.samplesPerS).toLocaleString('en-US')} samples/s  ${e.epochTimeS.toFixed(1)} s` +
          (e.skippedSteps ? `  (${e.skippedSteps} step(s) skipped: NaN or Inf)` : ''),
      );
    },
    checkpoint: async () => undefined,
    log: say,
    close: () => bar?.stop(),
  };
}
