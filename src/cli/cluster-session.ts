/**
 * One run followed on a cluster, for `bnn launch --local`, `bnn launch --coordinator` and
 * `bnn resume`: start a local cluster (nats-server, coordinator, N workers) or connect to a
 * running coordinator; watch, then start the run (submit or resume); print its epoch lines until
 * it ends (WatchCluster, polling GetRun if the stream drops); stop what was started; print the
 * result. SIGINT (Ctrl-C) or SIGTERM (a scheduler's stop) cancels the run and waits for
 * CANCELLED; a second one leaves at once.
 */
import { ENV, ENV_VARS } from '../config/environment.js';
import type { CoordinatorClient, ClientTls, RunInfo } from '../rpc/index.js';
import { onStopSignals, signalExitCode, type StopSignal } from '../util/signals.js';
import type { Logger } from '../util/log.js';
import type { CliIO } from './command.js';
import { EXIT, isTerminal, onRunEvent, pct, queuedLine, type EpochEvent, type Terminal, type WatchEvent } from './commands/run-events.js';

/** Where the run goes: a cluster started here for the session, or one already running. */
export type SessionTarget =
  | {
      kind: 'local';
      workers: number;
      threadsPerWorker: number;
      backend: string;
      store: string;
      natsServerBin?: string;
      gpus?: number[];
      /** The coordinator's --checkpoint-store. */
      checkpointStore?: 'local' | 'nats';
      /** Run nats-server with JetStream, its files here (the object store). */
      jetstreamDir?: string;
    }
  | { kind: 'remote'; address: string; token: string; tls: ClientTls | null; connectTimeoutMs: number };

/** How the run is started once the session is connected and watching. */
export interface SessionStart {
  /** Submits or resumes the run; returns its id and what to add to the JSON result. */
  start(client: CoordinatorClient): Promise<{ runId: string; result?: Record<string, unknown> }>;
  /** The lines that introduce the run (after it started), given where the cluster is and what `start` returned. */
  header(
    runId: string,
    where: { coordinator: string; natsUrl: string | null; dashboard: string | null },
    result: Record<string, unknown>,
  ): string[];
  /** Workers the run trains with (for the result). */
  workers: number;
}

export interface SessionOutput {
  io: CliIO;
  /** The session's lines on stderr, and its local cluster's, relayed. */
  log: Logger;
  json: boolean;
  quiet: boolean;
  /** The experiment database a local cluster writes: a run that did not complete gets a `bnn resume` hint. */
  store?: string;
  /** Start the run and return at once (a remote cluster keeps it going): prints the run id (JSON: `{runId, status, waiting}`). */
  detach?: boolean;
}

interface FollowResult {
  status: Terminal;
  error: string;
  epochs: EpochEvent[];
}

interface Connected {
  client: CoordinatorClient;
  coordinator: string;
  natsUrl: string | null;
  dashboard: string | null;
  /** A worker of a local cluster exited with this (null while none did). */
  workerFailure(): string | null;
  /** A local cluster: records the run in its cluster file (src/launch/cluster-file.ts). */
  started(runId: string): void;
  close(): Promise<void>;
}

/** What to type to continue a run that did not complete. */
export function resumeHint(runId: string, store: string): string {
  return `bnn: continue it from its last checkpoint with: bnn resume ${runId} --store ${store}`;
}

/**
 * Runs the session; returns the exit code: 0 COMPLETED, 1 FAILED, 130 CANCELLED; stopped by a
 * signal (the run cancelled, or left on a second one): 130 for SIGINT, 143 for SIGTERM.
 */
export async function runClusterSession(target: SessionTarget, run: SessionStart, out: SessionOutput): Promise<number> {
  const say = (line: string) => {
    if (!out.quiet && !out.json) out.log.info(line);
  };
  const t0 = performance.now();
  const conn = await connect(target, out);
  let runId = '';
  // the first SIGINT or SIGTERM cancels the run; a second one leaves without waiting for it
  let signalled: StopSignal | null = null;
  let leaving = false;
  let failedHere: string | null = null;
  let watch: ReturnType<CoordinatorClient['watchCluster']> | null = null;
  const cancel = () => {
    say(`bnn: ${signalled}: cancelling run ${runId} (a second SIGINT or SIGTERM leaves without waiting)`);
    void conn.client.cancelRun({ run_id: runId }).catch((err: Error) => say(`bnn: CancelRun failed: ${err.message}`));
  };
  const removeSignals = onStopSignals({
    first: (signal) => {
      signalled = signal;
      if (runId) cancel();
    },
    again: () => {
      leaving = true;
      watch?.cancel();
    },
  });
  // A worker that dies before the run started would leave it PENDING forever: cancel it then.
  const watchdog = setInterval(() => {
    const why = conn.workerFailure();
    if (!why || !runId || failedHere) return;
    void conn.client
      .getRun({ run_id: runId })
      .then((info) => {
        if (info.status !== 'PENDING') return;
        failedHere = why;
        return conn.client.cancelRun({ run_id: runId });
      })
      .catch(() => undefined);
  }, 500);
  let result: FollowResult;
  let extra: Record<string, unknown> = {};
  try {
    await conn.client.waitForReady(target.kind === 'remote' ? target.connectTimeoutMs : 30_000);
    // before the start, so no event of the run is missed (a detached session follows nothing)
    if (!out.detach) watch = conn.client.watchCluster({ run_id: '' });
    const started = await run.start(conn.client);
    runId = started.runId;
    conn.started(runId);
    extra = started.result ?? {};
    for (const line of run.header(runId, conn, extra)) say(line);
    if (out.detach) return await detached(conn.client, runId, out, extra);
    if (leaving) watch?.cancel();
    else if (signalled) cancel(); // signalled while it was being started
    result = await followRun(conn.client, runId, watch!, { say, stopped: () => leaving });
  } finally {
    clearInterval(watchdog);
    removeSignals();
    watch?.cancel();
    await conn.close();
  }
  if (failedHere) result = { ...result, error: failedHere };
  const wallTimeS = (performance.now() - t0) / 1000;
  printResult(out, { runId, ...result, workers: run.workers, coordinator: conn.coordinator, wallTimeS, extra });
  // stopped by a signal: its exit code, whether the run ended CANCELLED or (its coordinator stopped too) FAILED
  if (signalled && result.status !== 'COMPLETED') return signalExitCode(signalled);
  return failedHere ? 1 : EXIT[result.status];
}

/** `--detach`: the run's id and where it stands (queued: why), then back to the shell. */
async function detached(client: CoordinatorClient, runId: string, out: SessionOutput, extra: Record<string, unknown>): Promise<number> {
  const info = await client.getRun({ run_id: runId });
  if (out.json) {
    const waiting = info.status === 'PENDING' ? { waiting: info.waiting || null, queuePosition: info.queue_position } : {};
    out.io.stdout.write(`${JSON.stringify({ runId, status: info.status, ...waiting, ...extra })}\n`);
  } else {
    out.io.stdout.write(`${runId}\n`);
    if (!out.quiet && info.status === 'PENDING' && info.waiting)
      out.log.info(`bnn: run ${runId} ${queuedLine(info.waiting, info.queue_position)}`);
    if (!out.quiet) out.log.info(`bnn: follow it with bnn monitor --coordinator <host:port> --run ${runId}, or bnn show ${runId}`);
  }
  return 0;
}

async function connect(target: SessionTarget, out: SessionOutput): Promise<Connected> {
  const log = (line: string) => {
    if (!out.quiet) out.log.info(line);
  };
  const { connectCoordinator } = await import('../rpc/index.js');
  if (target.kind === 'remote') {
    const client = connectCoordinator(target.address, { token: target.token, ...(target.tls ? { tls: target.tls } : {}) });
    return {
      client,
      coordinator: target.address,
      natsUrl: null,
      dashboard: null,
      workerFailure: () => null,
      started: () => undefined,
      close: async () => client.close(),
    };
  }
  const { startLocalCluster } = await import('../launch/local-cluster.js');
  let workerFailure: string | null = null;
  let ended = false;
  const cluster = await startLocalCluster({
    workers: target.workers,
    threadsPerWorker: target.threadsPerWorker,
    backend: target.backend,
    store: target.store,
    ...(target.natsServerBin ? { natsServerBin: target.natsServerBin } : {}),
    ...(target.gpus ? { gpus: target.gpus } : {}),
    ...(target.checkpointStore ? { checkpointStore: target.checkpointStore } : {}),
    ...(target.jetstreamDir ? { jetstreamDir: target.jetstreamDir } : {}),
    relay: (line, source) => {
      if (!out.quiet) out.log.relay(line, source);
    },
    logFormat: out.log.format,
    // settings meant for another cluster never reach this one's children; the weights-dump hook of
    // the workers (BNN_WORKER_DUMP_WEIGHTS, no flag of launch) does
    dropEnv: ENV_VARS.filter((v) => v !== ENV.workerDumpWeights),
    onWorkerExit: (i, code) => {
      if (code !== 0 && !ended) workerFailure ??= `worker ${i} exited with ${code === null ? 'a signal' : `code ${code}`}`;
    },
  });
  const client = connectCoordinator(cluster.coordinator, { token: cluster.token });
  // `bnn monitor` (no --coordinator) finds the cluster through this file, readable only by this user
  const { writeClusterFile, removeClusterFile } = await import('../launch/cluster-file.js');
  const info = {
    coordinator: cluster.coordinator,
    token: cluster.token,
    dashboard: cluster.dashboard,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    runId: null as string | null,
    store: target.store,
  };
  const file = writeClusterFile(info);
  if (file) log(`bnn: cluster address and token in ${file} (mode 0600): bnn monitor finds it`);
  return {
    client,
    coordinator: cluster.coordinator,
    natsUrl: cluster.natsUrl,
    dashboard: cluster.dashboard,
    workerFailure: () => workerFailure,
    started: (runId) => {
      if (file) writeClusterFile({ ...info, runId });
    },
    close: async () => {
      ended = true;
      removeClusterFile(file);
      client.close();
      await cluster.stop(10_000);
    },
  };
}

/**
 * Follows `runId` until it ends: epoch and generation lines through `say`. When the watch stream
 * drops (a coordinator restart, a network blip) it polls GetRun, and gives up after
 * `lostAfterMs` without an answer.
 */
async function followRun(
  client: CoordinatorClient,
  runId: string,
  watch: AsyncIterable<WatchEvent>,
  o: { say(line: string): void; stopped(): boolean; lostAfterMs?: number },
): Promise<FollowResult> {
  const epochs: EpochEvent[] = [];
  try {
    for await (const ev of watch) {
      const end = onRunEvent(ev, runId, epochs, o.say);
      if (end) return { ...end, epochs };
    }
  } catch (err) {
    if (!o.stopped()) o.say(`bnn: lost the watch stream (${(err as Error).message}); polling the run`);
  }
  if (o.stopped()) return { status: 'CANCELLED', error: 'detached', epochs };
  // The stream ended without the run's end (or we missed it): ask until it answers.
  const lostAfterMs = o.lostAfterMs ?? 60_000;
  let lastOk = Date.now();
  for (;;) {
    if (o.stopped()) return { status: 'CANCELLED', error: 'detached', epochs };
    let info: RunInfo | null = null;
    try {
      info = await client.getRun({ run_id: runId });
      lastOk = Date.now();
    } catch (err) {
      if (Date.now() - lastOk > lostAfterMs) {
        return {
          status: 'FAILED',
          error: `lost the coordinator for ${Math.round(lostAfterMs / 1000)} s (${(err as Error).message}); the run may still be going: bnn show ${runId}`,
          epochs,
        };
      }
    }
    if (info && isTerminal(info.status)) return { status: info.status, error: info.error, epochs };
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function printResult(
  out: SessionOutput,
  r: FollowResult & { runId: string; workers: number; coordinator: string; wallTimeS: number; extra: Record<string, unknown> },
): void {
  const last = r.epochs.at(-1);
  if (out.json) {
    out.io.stdout.write(
      `${JSON.stringify({
        runId: r.runId,
        status: r.status,
        error: r.error || null,
        workers: r.workers,
        coordinator: r.coordinator,
        ...r.extra,
        wallTimeS: r.wallTimeS,
        finalTestAcc: last?.testAcc ?? null,
        epochs: r.epochs,
      })}\n`,
    );
    return;
  }
  if (!out.quiet) {
    out.io.stdout.write(
      `run ${r.runId} ${r.status}${r.error ? ` (${r.error})` : ''} in ${r.wallTimeS.toFixed(1)} s` +
        (last?.testAcc != null ? `; final test accuracy ${pct(last.testAcc)}` : '') +
        '\n',
    );
  }
  if (r.runId && r.status !== 'COMPLETED' && out.store) out.log.info(resumeHint(r.runId, out.store));
}
