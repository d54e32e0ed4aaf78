// `bnn worker`: registers with the coordinator, heartbeats, waits for one assignment, trains
// it data-parallel over NATS and exits when the run ends (or is stopped). Later assignments of
// the same run (a higher generation) re-form its group mid-run (see session.ts).
import os from 'node:os';
import type { NatsAuth } from '../src/collective/index.js';
import { parseRunConfig } from '../src/config/index.js';
import { initEngine, type BackendChoice } from '../src/engine/select.js';
import { connectCoordinator, type Assignment, type ClientTls, type CoordinatorClient, type MetricsReport } from '../src/rpc/index.js';
import { snapshotHardware } from '../src/telemetry/hardware.js';
import { CoordinatorLostError, RunStoppedError } from './errors.js';
import { ProgressReporter } from './progress.js';
import { startHeartbeat, type Heartbeat } from './heartbeat.js';
import { GroupSession, missingRanksOf } from './session.js';
import { trainRank } from './train.js';

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
  threads: number;
  backend: BackendChoice;
  /** Stop when stdin ends (a launcher's lifeline). */
  exitWithStdin: boolean;
  /** Dump final weights as JSON here (tests). */
  dumpWeightsDir?: string;
  /** How long to wait for the coordinator at start. */
  connectTimeoutMs: number;
  /** All-reduce step deadline. */
  stepDeadlineMs: number;
  /** Keep trying to reconnect to a NATS server that went away this long (default 60 s). */
  natsReconnectTimeoutMs?: number;
  log(line: string): void;
}

/** Returns the exit code: 0 the run completed (or was stopped by the coordinator), 1 it failed here. */
export async function runWorker(o: RunWorkerOptions): Promise<number> {
  const client = connectCoordinator(o.coordinator, { token: o.token, ...(o.tls ? { tls: o.tls } : {}) });
  let session: GroupSession | null = null;
  let heartbeat: Heartbeat | null = null;
  let stream: ReturnType<CoordinatorClient['assignments']> | null = null;
  try {
    await client.waitForReady(o.connectTimeoutMs);
    const hardware = await snapshotHardware({ gpuTimeoutMs: 2000 });
    const reg = await client.register({
      hostname: os.hostname(), hardware_json: JSON.stringify(hardware), threads: o.threads, backend: o.backend, pid: process.pid,
    });
    const workerId = reg.worker_id;
    const tag = `worker ${workerId}`;
    o.log(`${tag}: registered with ${o.coordinator}`);
    heartbeat = await startHeartbeat(client, {
      coordinator: o.coordinator, token: o.token, tls: o.tls ?? null, workerId, intervalMs: reg.heartbeat_interval_ms,
    }, (line) => o.log(`${tag}: ${line}`));

    let stopReason: string | null = null;
    let lost: Error | null = null;
    let assigned!: (a: Assignment) => void;
    const assignment = new Promise<Assignment>((resolve) => (assigned = resolve));
    let lostSignal!: (e: Error) => void;
    const lostPromise = new Promise<never>((_, reject) => (lostSignal = reject));
    lostPromise.catch(() => undefined);
    // A STOP also abandons an all-reduce in flight: the peers that stopped will never contribute.
    let stopSignal!: (e: Error) => void;
    const stopPromise = new Promise<never>((_, reject) => (stopSignal = reject));
    stopPromise.catch(() => undefined);
    const lifeline = o.exitWithStdin ? watchStdin(() => { stopReason ??= 'launcher went away (stdin closed)'; lostSignal(new CoordinatorLostError('stdin closed')); }) : () => undefined;
    const assignments = client.assignments({ worker_id: workerId });
    stream = assignments;
    let runId = '';
    const later: Assignment[] = [];
    void (async () => {
      try {
        for await (const a of assignments) {
          if (a.kind === 'ASSIGN' && runId === '') {
            runId = a.run_id;
            assigned(a);
          } else if (a.kind === 'ASSIGN' && a.run_id === runId) {
            const live = session as GroupSession | null;
            if (live) live.offer(a);
            else later.push(a);
          } else if (a.kind === 'STOP' && a.run_id === runId) {
            stopReason = a.reason || 'stopped';
            stopSignal(new RunStoppedError(runId, stopReason));
          }
        }
        lost = new CoordinatorLostError(`the coordinator ended the assignment stream`);
      } catch (err) {
        lost = new CoordinatorLostError(`lost the coordinator: ${(err as Error).message}`, { cause: err });
      }
      lostSignal(lost);
    })();

    const a = await Promise.race([assignment, lostPromise]);
    o.log(`${tag}: run ${a.run_id} rank ${a.rank}/${a.world_size} generation ${a.generation}`);
    const interrupted = Promise.race([lostPromise, stopPromise]);
    interrupted.catch(() => undefined);
    const s = new GroupSession(a, {
      ...(o.natsUrl ? { natsUrl: o.natsUrl } : {}), ...(o.natsAuth ? { nats: o.natsAuth } : {}), name: workerId,
      stepDeadlineMs: o.stepDeadlineMs, reconnectTimeoutMs: o.natsReconnectTimeoutMs ?? 60_000,
      regroupTimeoutMs: Math.max(60_000, o.stepDeadlineMs), interrupted,
      reportFailure: async (err, group, step) => {
        await client.reportMetrics({
          worker_id: workerId, run_id: a.run_id, generation: group.generation, rank: group.rank,
          collective_error: err.message, missing_ranks: missingRanksOf(err), failed_step: Math.max(0, step + 1),
        });
      },
      log: (line) => o.log(`${tag}: ${line}`),
    });
    session = s;
    for (const next of later.splice(0)) s.offer(next);
    // Reports carry the generation and rank this worker holds when they are sent.
    const report = async (m: Partial<MetricsReport>) => {
      const g = s.group;
      await client.reportMetrics({ ...m, worker_id: workerId, run_id: a.run_id, generation: g.generation, rank: g.rank });
    };
    try {
      const config = parseRunConfig(JSON.parse(a.config_json), { source: `run ${a.run_id}` });
      await initEngine({ backend: o.backend, threads: o.threads, warn: (m) => o.log(`${tag}: ${m}`) });
      const progress = new ProgressReporter(report, { gpuCount: hardware.gpuCount ?? 0 });
      try {
        const result = await trainRank({
          runId: a.run_id, config, ...(a.resume_path ? { resume: { path: a.resume_path, sha256: a.resume_sha256 } } : {}),
        }, {
          group: () => s.group,
          join: () => s.join(),
          beginAllreduceSum: (v, step) => {
            const h = s.beginAllreduceSum(v, step);
            return { submit: (b) => h.submit(b), finish: () => progress.allreduce(() => h.finish(), () => s.bytes) };
          },
          broadcastFromRank0: (v) => s.broadcastFromRank0(v),
          gatherFromEveryRank: (mine) => s.gatherFromEveryRank(mine),
          errorFeedback: () => s.errorFeedback(),
          restoreErrorFeedback: (worker, owner) => s.restoreErrorFeedback(worker, owner),
          regroup: (err) => s.regroup(err),
          report,
          reportCheckpoint: async (c) => {
            const g = s.group;
            await client.reportCheckpoint({ ...c, worker_id: workerId, run_id: a.run_id, generation: g.generation, rank: g.rank });
          },
          onStep: (seconds, samples, step) => progress.stepDone(seconds, samples, step),
          checkStop: () => {
            if (stopReason !== null) throw new RunStoppedError(a.run_id, stopReason);
            if (lost) throw lost;
          },
          ...(o.dumpWeightsDir ? { dumpWeightsDir: o.dumpWeightsDir } : {}),
          log: (line) => o.log(`${tag}: ${line}`),
        });
        await progress.stop();
        await report({ done: true, steps: result.steps });
        o.log(`${tag}: run ${a.run_id} done after ${result.steps} steps`);
        return 0;
      } finally {
        progress.close();
        lifeline();
      }
    } catch (err) {
      if (err instanceof RunStoppedError) {
        o.log(`${tag}: ${err.message}`);
        return 0;
      }
      o.log(`${tag}: run ${a.run_id} failed: ${(err as Error).stack ?? String(err)}`);
      if (!(err instanceof CoordinatorLostError)) await report({ error: (err as Error).message }).catch(() => undefined);
      return 1;
    }
  } finally {
    stream?.cancel();
    await heartbeat?.stop();
    await session?.close();
    client.close();
  }
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
