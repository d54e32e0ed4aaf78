// `bnn bench-scaling`: samples/s of one config trained by `bnn launch --local N` (real
// nats-server, coordinator and worker processes, one engine thread per worker) for N = 1 and 2
// and each gradient compression, reported as the ratio N=2 / N=1 measured in one run.
// Two ways to give N workers a batch: `global` keeps the config's batch size B and splits it
// (each worker computes B/N per step: strong scaling, the data-parallel invariant's setting);
// `per-worker` gives each worker B, i.e. a global batch of N·B (weak scaling: the per-process
// batch size of PyTorch DDP or Horovod). One worker is the same run in both.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Compression } from '../collective/codec.js';
import { UserError } from '../util/errors.js';

import type { BatchMode } from './scaling-modes.js';
export { BATCH_MODES, type BatchMode } from './scaling-modes.js';

export interface ScalingOptions {
  /** Run config (YAML) to train. */
  configPath: string;
  /** The config's train.batchSize (B). */
  batchSize: number;
  /** How N workers share a step (see the file comment); both by default. */
  batchModes: BatchMode[];
  compressions: Compression[];
  /** Worker counts; the first is the baseline of the ratios. */
  workers: number[];
  /** Epochs per run; the last epoch's samples/s is reported (the first one warms up). */
  epochs: number;
  /** Class-stratified fraction of the training set (keeps a run short). */
  subset: number;
  /** Runs per (compression, workers); the median samples/s is reported. */
  repeats: number;
  /** Progress lines for people. */
  progress?: (line: string) => void;
}

export interface ScalingRun {
  compression: Compression;
  /** Absent for the baseline worker count's run, which serves every mode. */
  batchMode: BatchMode | null;
  /** Global batch size of the run. */
  batchSize: number;
  workers: number;
  repeat: number;
  runId: string;
  status: string;
  /** The last epoch's samples/s as rank 0 measured it (epoch wall time, evaluation excluded). */
  samplesPerS: number;
  /** samples/s of every epoch. */
  epochSamplesPerS: number[];
  wallTimeS: number;
  /** Launches of this configuration that failed before this one completed (each is retried once). */
  failedAttempts: string[];
}

export interface ScalingRow {
  compression: Compression;
  batchMode: BatchMode;
  workers: number;
  /** Samples each worker computes per step. */
  perWorkerBatch: number;
  /** Median over the repeats. */
  samplesPerS: number;
  /** samplesPerS / the baseline worker count's samplesPerS of the same compression. */
  speedup: number;
}

export interface ScalingReport {
  config: string;
  batchSize: number;
  epochs: number;
  subset: number;
  threadsPerWorker: 1;
  cores: number;
  /** 1-minute load average before the first and after the last run. */
  loadAverage: { before: number; after: number };
  runs: ScalingRun[];
  rows: ScalingRow[];
}

interface LaunchJson {
  runId: string;
  status: string;
  error: string | null;
  wallTimeS: number;
  epochs: Array<{ epoch: number; samplesPerS: number }>;
}

/** Runs `bnn launch` as a child process (the same node flags and entry as this process) and parses its --json line. */
function launch(args: string[]): Promise<LaunchJson> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, 'launch', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        const parsed = JSON.parse(line) as LaunchJson;
        if (code !== 0 || parsed.status !== 'COMPLETED')
          reject(new Error(`run ${parsed.runId} ${parsed.status}${parsed.error ? ` (${parsed.error})` : ''}`));
        else resolve(parsed);
      } catch {
        reject(new Error(`bnn launch exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
      }
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** One launch of the plan: a worker count and, above one worker, how the workers share the batch. */
interface PlannedRun {
  workers: number;
  batchMode: BatchMode | null;
}

/** The runs of one compression: the baseline worker count once per mode when it is above 1; once for all modes at 1. */
function planRuns(o: ScalingOptions): PlannedRun[] {
  const plan: PlannedRun[] = [];
  for (const workers of o.workers) {
    if (workers === 1) plan.push({ workers, batchMode: null });
    else for (const batchMode of o.batchModes) plan.push({ workers, batchMode });
  }
  return plan;
}

/** `bnn launch` arguments of one run; its store and checkpoints go under `dir`. */
function launchArgs(o: ScalingOptions, compression: Compression, workers: number, batchSize: number, dir: string): string[] {
  return [
    o.configPath,
    '--local',
    String(workers),
    '--threads-per-worker',
    '1',
    '--compression',
    compression,
    '--epochs',
    String(o.epochs),
    '--subset',
    String(o.subset),
    '--batch-size',
    String(batchSize),
    '--store',
    path.join(dir, 'bench.db'),
    '--checkpoint-dir',
    path.join(dir, 'checkpoints'),
    '--set',
    'train.evalEveryEpoch=false',
    '--json',
    '--quiet',
  ];
}

/** Launches once, and once more after a failure; a second failure is the user's (a UserError naming the run). */
async function launchRetryingOnce(
  args: string[],
  label: string,
  progress: (line: string) => void,
): Promise<{ result: LaunchJson; failedAttempts: string[] }> {
  const failedAttempts: string[] = [];
  let r: LaunchJson | null = null;
  while (!r) {
    try {
      r = await launch(args);
    } catch (err) {
      failedAttempts.push((err as Error).message);
      progress(`  failed: ${(err as Error).message}`);
      if (failedAttempts.length > 1) throw new UserError(`bench scaling: ${label} failed twice: ${failedAttempts.join('; ')}`);
    }
  }
  return { result: r, failedAttempts };
}

/** Trains one planned run with `compression` and reports its last epoch's samples/s. */
async function measureRun(
  o: ScalingOptions,
  dir: string,
  progress: (line: string) => void,
  compression: Compression,
  { workers, batchMode }: PlannedRun,
  repeat: number,
): Promise<ScalingRun> {
  const batchSize = batchMode === 'per-worker' ? o.batchSize * workers : o.batchSize;
  const label = `${compression}, ${workers} worker(s), global batch ${batchSize}${batchMode ? ` (${batchMode})` : ''}`;
  progress(`${label}${o.repeats > 1 ? `, repeat ${repeat + 1}/${o.repeats}` : ''} ... (load ${os.loadavg()[0]?.toFixed(2)})`);
  const { result: r, failedAttempts } = await launchRetryingOnce(launchArgs(o, compression, workers, batchSize, dir), label, progress);
  const epochSamplesPerS = r.epochs.map((e) => e.samplesPerS);
  const last = epochSamplesPerS.at(-1);
  if (last === undefined) throw new Error(`run ${r.runId} reported no epoch`);
  progress(`  ${Math.round(last)} samples/s (epochs: ${epochSamplesPerS.map((s) => Math.round(s)).join(', ')})`);
  return {
    compression,
    batchMode: workers === 1 ? null : batchMode,
    batchSize,
    workers,
    repeat,
    runId: r.runId,
    status: r.status,
    samplesPerS: last,
    epochSamplesPerS,
    wallTimeS: r.wallTimeS,
    failedAttempts,
  };
}

/** One row per (mode, compression, workers): the median over the repeats and its ratio to the baseline worker count. */
function scalingRows(o: ScalingOptions, runs: ScalingRun[]): ScalingRow[] {
  const rows: ScalingRow[] = [];
  const of = (compression: Compression, workers: number, mode: BatchMode) =>
    median(
      runs
        .filter((r) => r.compression === compression && r.workers === workers && (r.batchMode === null || r.batchMode === mode))
        .map((r) => r.samplesPerS),
    );
  for (const batchMode of o.batchModes) {
    for (const compression of o.compressions) {
      const baseline = of(compression, o.workers[0] as number, batchMode);
      for (const workers of o.workers) {
        const samplesPerS = of(compression, workers, batchMode);
        rows.push({
          compression,
          batchMode,
          workers,
          perWorkerBatch: batchMode === 'per-worker' ? o.batchSize : o.batchSize / workers,
          samplesPerS,
          speedup: samplesPerS / baseline,
        });
      }
    }
  }
  return rows;
}

/** Trains the config with every (compression, workers) pair, interleaved so all see the same machine load. */
export async function benchScaling(o: ScalingOptions): Promise<ScalingReport> {
  const progress = o.progress ?? (() => undefined);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bnn-bench-scaling-'));
  const before = os.loadavg()[0] as number;
  const runs: ScalingRun[] = [];
  try {
    for (let repeat = 0; repeat < o.repeats; repeat++) {
      for (const compression of o.compressions) {
        for (const planned of planRuns(o)) runs.push(await measureRun(o, dir, progress, compression, planned, repeat));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = scalingRows(o, runs);
  return {
    config: o.configPath,
    batchSize: o.batchSize,
    epochs: o.epochs,
    subset: o.subset,
    threadsPerWorker: 1,
    cores: os.availableParallelism(),
    loadAverage: { before, after: os.loadavg()[0] as number },
    runs,
    rows,
  };
}
