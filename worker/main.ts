// `bnn worker`: registers with the coordinator, heartbeats, and serves the runs it is assigned
// one after another until stopped (SIGTERM/SIGINT, or `--once`: after one run), training each
// data-parallel over NATS with the one training loop (src/train/loop.ts). Later assignments of
// the same run (a higher generation) re-form its group mid-run (src/collective/elastic-group.ts).
import os from 'node:os';
import path from 'node:path';
import { CheckpointStores, type CheckpointStore } from '../src/checkpoint/index.js';
import {
  connectNatsTransport,
  ElasticGroup,
  NatsObjectBucket,
  missingRanksOf,
  NatsAuthError,
  natsServerList,
  natsUrlWithAuth,
  redactNatsUrl,
  splitNatsServers,
  type GroupAssignment,
  type NatsAuth,
} from '../src/collective/index.js';
import { parseRunConfig, type RunConfig } from '../src/config/index.js';
import { initEngine, type BackendChoice } from '../src/engine/select.js';
import { connectCoordinator, type Assignment, type ClientTls, type CoordinatorClient, type MetricsReport } from '../src/rpc/index.js';
import { snapshotHardware } from '../src/telemetry/hardware.js';
import { groupCollective } from '../src/train/group-collective.js';
import { flatLayout } from '../src/train/gradients.js';
import { runTrainingLoop } from '../src/train/loop.js';
import { prepareTraining } from '../src/train/setup.js';
import { TrainingStoppedError } from '../src/train/errors.js';
import { fp32SizeBytes } from '../src/bnn/models.js';
import { packedSizeBytes } from '../src/export/packed.js';
import { AssignmentStream, type RunFeed } from './assignments.js';
import { WorkerEnergy } from './energy.js';
import { CoordinatorLostError, WorkerShutdownError } from './errors.js';
import { startHeartbeat, type Heartbeat } from './heartbeat.js';
import { ProgressReporter } from './progress.js';
import { reporter, reportSink, type ReportSinkDeps } from './report-sink.js';
import type { LogLine } from '../src/util/log.js';

export interface RunWorkerOptions {
  /** `host:port` of the coordinator. */
  coordinator: string;
  token: string;
  /** Overrides the NATS url of the assignment. */
  natsUrl?: string;
  /** NATS credentials / TLS files; they override credentials carried in the url. */
  natsAuth?: NatsAuth;
  /** Talk to the coordinator over TLS (mutual TLS with a client certificate); absent: plaintext. */
  tls?: ClientTls;
  /** Engine threads; a run whose config sets `engine.threads` above 0 uses that instead. */
  threads: number;
  backend: BackendChoice;
  /** Stop when stdin ends (a launcher's lifeline). */
  exitWithStdin: boolean;
  /** Serve one run, then exit (default: serve runs until SIGTERM/SIGINT). */
  once?: boolean;
  /** Dump final weights as JSON here (tests). */
  dumpWeightsDir?: string;
  /** How long to wait for the coordinator at start. */
  connectTimeoutMs: number;
  /** All-reduce step deadline. */
  stepDeadlineMs: number;
  /** The GPU this worker was given (`--gpu`, already made its only visible device): recorded in its hardware snapshot. */
  gpu?: number;
  /** Keep trying to reconnect to a NATS server that went away this long (default 60 s). */
  natsReconnectTimeoutMs?: number;
  /** Log lines (the command's logger). */
  log: LogLine;
}

/** Engine threads of a worker for a run: the run's `engine.threads` when set (> 0), else the worker's own. */
export function runThreads(config: RunConfig, workerThreads: number): number {
  return config.engine.threads > 0 ? config.engine.threads : workerThreads;
}

/**
 * Returns the exit code. With `once`: 0 the run completed (or was stopped by the coordinator), 1 it
 * failed here. Serving: 0 when stopped by SIGTERM/SIGINT (or the launcher's lifeline), 1 when the
 * coordinator went away.
 */
export async function runWorker(o: RunWorkerOptions): Promise<number> {
  const client = connectCoordinator(o.coordinator, { token: o.token, ...(o.tls ? { tls: o.tls } : {}) });
  let heartbeat: Heartbeat | null = null;
  let feed: AssignmentStream | null = null;
  try {
    await client.waitForReady(o.connectTimeoutMs);
    const hardware = await snapshotHardware({ gpuTimeoutMs: 2000, ...(o.gpu !== undefined ? { gpuIndex: o.gpu } : {}) });
    const reg = await client.register({
      hostname: os.hostname(),
      hardware_json: JSON.stringify(hardware),
      threads: o.threads,
      backend: o.backend,
      pid: process.pid,
    });
    const workerId = reg.worker_id;
    const log: LogLine = (line, level, fields) => o.log(`worker ${workerId}: ${line}`, level, { worker: workerId, ...fields });
    log(
      `registered with ${o.coordinator}${o.gpu !== undefined ? `, GPU ${o.gpu}: ${hardware.gpuModel ?? 'not found by systeminformation or nvidia-smi'}` : ''}`,
    );
    heartbeat = await startHeartbeat(
      client,
      {
        coordinator: o.coordinator,
        token: o.token,
        tls: o.tls ?? null,
        workerId,
        intervalMs: reg.heartbeat_interval_ms,
      },
      log,
    );
    feed = new AssignmentStream(client, workerId);
    const f = feed;
    const lifeline = o.exitWithStdin ? watchStdin(() => f.shutdown('launcher went away (stdin closed)')) : () => undefined;
    const signals = onShutdownSignals((signal) => {
      log(`${signal}: ${o.once ? 'stopping' : 'leaving the run in progress at its next step boundary, then exiting'}`);
      f.shutdown(signal);
    });
    try {
      let served = 0;
      for (;;) {
        let run: RunFeed;
        try {
          run = await feed.nextRun();
        } catch (err) {
          if (err instanceof WorkerShutdownError) {
            log(`stopped after ${served} run(s)`);
            return 0;
          }
          throw err;
        }
        const a = run.first;
        log(`run ${a.run_id} rank ${a.rank}/${a.world_size} generation ${a.generation}`);
        const code = await serveRun(client, { workerId, gpuCount: hardware.gpuCount ?? 0, feed: run, log }, o);
        served++;
        if (o.once) return code;
        const interrupted = interruption(run);
        if (interrupted instanceof WorkerShutdownError) {
          log(`stopped after ${served} run(s)`);
          return 0;
        }
        if (interrupted instanceof CoordinatorLostError) throw interrupted;
        log(`idle: waiting for the next run`);
      }
    } finally {
      signals();
      lifeline();
    }
  } finally {
    feed?.cancel();
    await heartbeat?.stop();
    client.close();
  }
}

interface RunContext {
  workerId: string;
  gpuCount: number;
  feed: RunFeed;
  log: LogLine;
}

/** What interrupted a run (a shutdown, the coordinator lost, a STOP), or null. */
function interruption(run: RunFeed): Error | null {
  try {
    run.checkStop();
    return null;
  } catch (err) {
    return err as Error;
  }
}

/** One assigned run as this worker trains it: what it runs, with whom, and where it reports. */
interface AssignedRun {
  client: CoordinatorClient;
  ctx: RunContext;
  options: RunWorkerOptions;
  config: RunConfig;
  group: ElasticGroup;
  /** The engine that really runs (recorded on the run's row). */
  backend: string;
  /** Who reports: the coordinator client, this worker, the run, its place in the current generation. */
  reportTo: Omit<ReportSinkDeps, 'progress' | 'log'>;
  /** Sends one report for the run (stateless: any number of callers share it). */
  report: (m: Partial<MetricsReport>) => Promise<void>;
}

/** Trains the assigned run to its end here; returns the exit code. */
async function serveRun(client: CoordinatorClient, c: RunContext, o: RunWorkerOptions): Promise<number> {
  const a = c.feed.first;
  const group = { current: null as ElasticGroup | null };
  const reportTo = { client, workerId: c.workerId, runId: a.run_id, group: () => group.current?.assignment ?? groupOf(a, o) };
  const report = reporter(reportTo);
  try {
    const config = parseRunConfig(JSON.parse(a.config_json), { source: `run ${a.run_id}` });
    const engine = await initEngine({ backend: o.backend, threads: runThreads(config, o.threads), warn: (m) => c.log(m, 'warn') });
    group.current = elasticGroup(client, c, config, o);
    c.feed.forwardTo((next) => group.current!.offer(groupOf(next, o)));
    const run: AssignedRun = { client, ctx: c, options: o, config, group: group.current, backend: engine.backend, reportTo, report };
    const { steps, energyJson } = await trainAssigned(run);
    await report({ done: true, steps, energy_json: energyJson });
    c.log(`run ${a.run_id} done after ${steps} steps`);
    return 0;
  } catch (err) {
    if (err instanceof TrainingStoppedError) {
      c.log(err.message);
      // asked to stop (SIGTERM): the coordinator records this rank as leaving, not lost, and re-forms at once
      if (err instanceof WorkerShutdownError) await report({ leaving: err.message }).catch(() => undefined);
      return 0;
    }
    c.log(`run ${a.run_id} failed: ${(err as Error).stack ?? String(err)}`, 'error');
    if (!(err instanceof CoordinatorLostError)) await report({ error: (err as Error).message }).catch(() => undefined);
    return 1;
  } finally {
    await group.current?.close();
  }
}

/** The data, model and loop of the run, with this worker's group as the collective and the coordinator as the sink. */
async function trainAssigned(run: AssignedRun): Promise<{ steps: number; energyJson: string }> {
  const a = run.ctx.feed.first;
  const stores = checkpointStores(a, run.options, run.ctx.workerId);
  try {
    const checkpointStore = await stores.writer(a.checkpoint_store === 'nats' ? 'nats' : 'local', run.config.checkpointDir);
    return await trainWith(run, stores, checkpointStore);
  } finally {
    await stores.close();
  }
}

/**
 * The checkpoint stores a worker reaches: local files, and the object store of the NATS servers
 * of its assignment (the all-reduce's url and credentials) on first use.
 */
function checkpointStores(a: Assignment, o: RunWorkerOptions, name: string): CheckpointStores {
  return new CheckpointStores({
    openBucket: (bucket) =>
      NatsObjectBucket.open({
        ...o.natsAuth,
        servers: natsUrlOf(a, o),
        name: `${name}-checkpoints`,
        connectTimeoutMs: 5000,
        bucket,
        ...(a.checkpoint_replicas > 0 ? { replicas: a.checkpoint_replicas } : {}),
      }),
  });
}

async function trainWith(
  run: AssignedRun,
  stores: CheckpointStores,
  checkpointStore: CheckpointStore,
): Promise<{ steps: number; energyJson: string }> {
  const { config, group, ctx: c, options: o, report } = run;
  const a = c.feed.first;
  const setup = await prepareTraining(config);
  // what the run's row records: the engine that really runs, and (rank 0) the model's sizes
  const rank0 = group.assignment.rank === 0;
  await report({
    backend: run.backend,
    ...(rank0 ? { model_size_bytes: fp32SizeBytes(setup.model), packed_size_bytes: packedSizeBytes(setup.model) ?? 0 } : {}),
  });
  const energy = await WorkerEnergy.start((energy_json) => report({ energy_json }), c.log);
  const progress = new ProgressReporter(report, { gpuCount: c.gpuCount }, () => rejectionFields(group));
  try {
    const collective = groupCollective(group, flatLayout(setup.model.params()), {
      timeReduce: (wait) => progress.allreduce(wait, () => group.bytes),
    });
    const reports = reportSink({ ...run.reportTo, progress, log: c.log });
    const sink = {
      ...reports,
      step: (s: Parameters<typeof reports.step>[0]) => {
        reports.step(s);
        energy.step(s.epoch);
      },
    };
    const result = await runTrainingLoop(setup, collective, sink, {
      runId: a.run_id,
      checkpointDir: path.resolve(config.checkpointDir, a.run_id),
      checkpointStore,
      readCheckpoint: (location, sha256) => stores.readCheckpoint(location, sha256),
      checkStop: () => c.feed.checkStop(),
      ...(a.resume_path ? { resume: { path: a.resume_path, sha256: a.resume_sha256 } } : {}),
      ...(o.dumpWeightsDir ? { dumpWeightsDir: o.dumpWeightsDir } : {}),
    });
    await progress.stop();
    return { steps: result.steps, energyJson: await energy.finish() };
  } finally {
    progress.close();
    energy.close();
    setup.model.dispose();
  }
}

/** Collective messages dropped for a failed MAC since the previous report (nothing when none). */
function rejectionFields(group: ElasticGroup): Partial<MetricsReport> {
  const r = group.takeRejections();
  return r.count > 0 ? { rejected_messages: r.count, rejected_subjects: r.subjects } : {};
}

/** This worker's place in the generation an assignment describes (a `--nats` flag overrides its url). */
function groupOf(a: Assignment, o: RunWorkerOptions): GroupAssignment {
  return {
    runId: a.run_id,
    rank: a.rank,
    worldSize: a.world_size,
    generation: a.generation,
    url: natsUrlOf(a, o),
    runKey: a.run_key,
    resync: a.resync,
  };
}

/**
 * The NATS servers of a generation: the worker's own `--nats` list, else the assignment's. A list
 * of the worker's that names only addresses keeps the credentials the assignment carries (its own
 * --nats-user/--nats-pass/--nats-token, applied when connecting, still override them).
 */
function natsUrlOf(a: Assignment, o: RunWorkerOptions): string {
  if (!o.natsUrl) return a.nats_url;
  const own = splitNatsServers(natsServerList(o.natsUrl));
  if (own.auth.user !== undefined || own.auth.token !== undefined || !a.nats_url) return o.natsUrl;
  return natsUrlWithAuth(own.urls.join(','), splitNatsServers(natsServerList(a.nats_url)).auth);
}

function elasticGroup(client: CoordinatorClient, c: RunContext, config: RunConfig, o: RunWorkerOptions): ElasticGroup {
  return new ElasticGroup(groupOf(c.feed.first, o), {
    compression: config.train.compression,
    connect: (servers, name) => connectNatsTransport({ ...o.natsAuth, servers, name, connectTimeoutMs: 2000 }),
    // refused credentials or a failed TLS handshake do not heal by waiting
    isFatal: (err) => err instanceof NatsAuthError,
    redact: (url) => `NATS ${redactNatsUrl(url)}`,
    name: c.workerId,
    stepDeadlineMs: o.stepDeadlineMs,
    reconnectTimeoutMs: o.natsReconnectTimeoutMs ?? 60_000,
    regroupTimeoutMs: Math.max(60_000, o.stepDeadlineMs),
    interrupted: c.feed.interrupted,
    reportFailure: async (err, g, step) => {
      await client.reportMetrics({
        worker_id: c.workerId,
        run_id: g.runId,
        generation: g.generation,
        rank: g.rank,
        collective_error: err.message,
        missing_ranks: missingRanksOf(err),
        failed_step: Math.max(0, step + 1),
      });
    },
    log: c.log,
  });
}

/** Calls `onSignal` on SIGTERM and SIGINT (a second one exits at once); returns the remover. */
function onShutdownSignals(onSignal: (signal: string) => void): () => void {
  let seen = 0;
  const handler = (signal: NodeJS.Signals) => {
    seen++;
    if (seen > 1) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    onSignal(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

function watchStdin(onEnd: () => void): () => void {
  const end = () => onEnd();
  process.stdin.on('end', end);
  process.stdin.on('error', end);
  process.stdin.resume();
  return () => {
    process.stdin.off('end', end);
    process.stdin.off('error', end);
    process.stdin.pause();
  };
}
