import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { COMPRESSIONS } from '../../collective/compression.js';
import { choiceFlag, fileFlag, hostPortFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { UserError } from '../../util/errors.js';
import { isObjectLocation } from '../../checkpoint/index.js';
import { localJetstreamDir } from '../../launch/local-cluster.js';
import { runLiveness } from '../../query/liveness.js';
import {
  getRun,
  getWorker,
  lastGeneration,
  listCheckpoints,
  listMembers,
  openStore,
  resumeWorldSize,
  runOwner,
  type Store,
  withStoreErrors,
} from '../../store/index.js';
import { describeOwner, type OwnerVerdict, type ProcessOwner } from '../../util/process-owner.js';
import { runClusterSession } from '../cluster-session.js';
import { GPUS_HELP, gpusFlag } from './launch.js';
import { action, type CommandContext } from '../command.js';
import { addClientTlsOptions, clientTlsFromFlags, type ClientTlsFlags } from '../security-options.js';
import { refuseFlags } from '../options.js';
import { clusterToken } from './coordinator.js';
import { ENV, envOption, typedOptions } from '../../config/environment.js';

interface ResumeFlags extends ClientTlsFlags, Record<string, unknown> {
  store: string;
  coordinator?: string;
  token?: string;
  workers?: string;
  priority?: string;
  detach?: boolean;
  local?: string;
  threadsPerWorker?: string;
  gpus?: string;
  compression?: string;
  natsServerBin?: string;
  json?: boolean;
  quiet?: boolean;
  force?: boolean;
}

const flagsSchema = z.object({
  store: fileFlag,
  local: numberFlag(z.number().int().min(1).max(64)).optional(),
  threadsPerWorker: numberFlag(z.number().int().min(0).max(1024)).optional(),
  gpus: gpusFlag.optional(),
  compression: choiceFlag(COMPRESSIONS).optional(),
});

const remoteFlags = z.object({
  coordinator: hostPortFlag,
  workers: numberFlag(z.number().int().min(1).max(1024)).optional(),
  compression: choiceFlag(COMPRESSIONS).optional(),
  priority: numberFlag(z.number().int().min(-1_000_000).max(1_000_000)).optional(),
});

/** A RUNNING run whose members' heartbeats still reach the store within this window has a live cluster. */
const ALIVE_WINDOW_MS = 5_000;

interface ResumableRun {
  id: string;
  status: string;
  /** Workers it resumes with unless told (resumeWorldSize). */
  worldSize: number;
  backend: string;
  /** For a RUNNING run: the most recent heartbeat a member of its last generation left in the store. */
  lastSeen: { worker: string; ageMs: number } | null;
  /** For a PENDING or RUNNING run: its owner process (`bnn train`, or a coordinator) and whether it still runs; null if none is recorded. */
  owner: { process: ProcessOwner; verdict: OwnerVerdict } | null;
  /** Where its checkpoints go: the object store when its config says so or any of its checkpoints is there. */
  checkpointStore: 'local' | 'nats';
  checkpointDir: string;
}

function lookUp(storePath: string, runId: string): ResumableRun {
  // An older store is upgraded as the query commands do (the coordinator would upgrade it anyway).
  const store = openStore(storePath, { readonly: true, upgrade: true });
  try {
    return withStoreErrors(store, () => resumableRun(store, runId));
  } finally {
    store.close();
  }
}

function resumableRun(store: Store, runId: string): ResumableRun {
  const row = getRun(store.db, runId);
  const { generation } = lastGeneration(store.db, row.id);
  let lastSeen: ResumableRun['lastSeen'] = null;
  for (const m of listMembers(store.db, row.id, generation)) {
    const w = getWorker(store.db, m.workerId);
    const ageMs = w ? Date.now() - Date.parse(w.lastSeen) : Infinity;
    if (!lastSeen || ageMs < lastSeen.ageMs) lastSeen = { worker: m.workerId, ageMs };
  }
  const owner = runOwner(row);
  const verdict = runLiveness(row);
  return {
    id: row.id,
    status: row.status,
    worldSize: resumeWorldSize(store.db, row.id),
    backend: row.config.engine.backend,
    lastSeen,
    owner: owner && verdict ? { process: owner, verdict } : null,
    checkpointStore:
      row.config.checkpointStore ?? (listCheckpoints(store.db, row.id).some((c) => isObjectLocation(c.path)) ? 'nats' : 'local'),
    checkpointDir: row.config.checkpointDir,
  };
}

const FORCE_HINT = 'pass --force if nothing runs it any more';

/**
 * Whether a run may be resumed: not COMPLETED, and nothing still running it. A PENDING or
 * RUNNING run is resumed when its owner process is gone (ABANDONED) and refused while it runs;
 * where the owner cannot be checked (another host, or none recorded) a cluster run's member
 * heartbeats decide (seen recently: wait out the window and look again), and a run without
 * members is refused. `--force` skips all but COMPLETED.
 */
async function checkResumable(storePath: string, id: string, force: boolean): Promise<ResumableRun> {
  let run = lookUp(storePath, id);
  if (run.status === 'COMPLETED') throw new UserError(`run ${run.id} has COMPLETED: nothing to resume`);
  if ((run.status !== 'RUNNING' && run.status !== 'PENDING') || force) return run;
  const owner = run.owner;
  if (owner?.verdict.state === 'alive') {
    throw new UserError(
      `run ${run.id} is ${run.status} and the process that runs it (${describeOwner(owner.process)}) is still running: ` +
        `stop it first (Ctrl-C cancels it at a checkpoint; bnn resume continues it then), or ${FORCE_HINT}`,
    );
  }
  if (owner?.verdict.state === 'gone') return run;
  const why = owner ? owner.verdict.why : 'it was recorded without its owner process (by an older bnn-cluster)';
  if (!run.lastSeen) {
    throw new UserError(`run ${run.id} is ${run.status} and ${why}: cannot tell whether it still runs; ${FORCE_HINT}`);
  }
  if (run.lastSeen.ageMs >= ALIVE_WINDOW_MS) return run;
  await new Promise((r) => setTimeout(r, ALIVE_WINDOW_MS - run.lastSeen!.ageMs + 300));
  run = lookUp(storePath, id);
  if (run.status !== 'RUNNING' || (run.lastSeen && run.lastSeen.ageMs < ALIVE_WINDOW_MS)) {
    throw new UserError(
      `run ${run.id} is ${run.status}${run.lastSeen ? ` and its worker ${run.lastSeen.worker} heartbeated ${(run.lastSeen.ageMs / 1000).toFixed(1)} s ago` : ''}: ` +
        'its cluster is still alive (stop it first, or pass --force if it is gone)',
    );
  }
  return run;
}

/** `bnn resume <run>`: nats-server, a coordinator and N workers on this host continue a run from its last good checkpoint. */
export function registerResume(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('resume')
    .description(
      'continue a run that did not complete (ABANDONED: its process died; FAILED; CANCELLED) from its newest good checkpoint, on nats-server, a coordinator and N workers started on this host',
    )
    .argument('<run>', 'run id or a unique prefix of it')
    .addOption(envOption('--store <file>', 'experiment database holding the run', ENV.store, './runs/bnn.db'))
    .option('--local <n>', "workers to start (default: the world size of the run's last generation)")
    .option('--threads-per-worker <n>', "engine threads of each worker when the run's config leaves engine.threads at 0 (default: 1)")
    .option('--gpus <list>', GPUS_HELP)
    .option('--compression <mode>', `gradient all-reduce wire format: ${COMPRESSIONS.join(', ')} (default: the run's train.compression)`)
    .option('--nats-server-bin <path>', 'nats-server executable (default: nats-server on PATH, or NATS_SERVER_BIN)')
    .option('--json', 'print the result as one JSON object on stdout (no progress lines)')
    .option('--quiet', 'no progress lines')
    .option('--force', 'resume a PENDING or RUNNING run even though its process still runs or its workers still heartbeat')
    .addOption(
      envOption(
        '--coordinator <host:port>',
        "resume on a running cluster instead (its coordinator checks the run in its own database and reads the run's checkpoints from where they live); from the environment, unless --local is given",
        ENV.coordinator,
      ),
    )
    .option('--workers <n>', "with --coordinator: workers to resume with (default: the world size of the run's last generation)")
    .addOption(envOption('--token <secret>', 'with --coordinator: the cluster token', ENV.clusterToken))
    .option('--priority <n>', 'with --coordinator: queue order while the run waits for workers (higher first)')
    .option('--detach', 'with --coordinator: resume, print the run id and exit');
  addClientTlsOptions(cmd).action(
    action(ctx, async (id: string, raw: ResumeFlags, command: Command) => {
      // BNN_COORDINATOR (not typed) counts unless --local is typed
      const typed = typedOptions(command, raw);
      if (typed.coordinator !== undefined || (raw.coordinator !== undefined && raw.local === undefined)) return resumeRemote(id, raw, ctx);
      refuseFlags(
        { '--workers': typed.workers, '--token': typed.token, '--priority': typed.priority, '--detach': typed.detach },
        'needs --coordinator <host:port> (use --local <n> for a cluster started here)',
      );
      const f = parseFlags(flagsSchema, raw);
      if (!existsSync(f.store)) throw new UserError(`--store: ${f.store} does not exist (pass the experiment database that holds the run)`);
      const run = await checkResumable(f.store, id, raw.force === true);
      const workers = f.local ?? run.worldSize;
      const warn = (line: string) => {
        if (!raw.json) ctx.log.warn(line);
      };
      if (run.owner?.verdict.state === 'gone' && !raw.quiet) {
        warn(`bnn: run ${run.id} is ABANDONED (recorded as ${run.status}, but ${run.owner.verdict.why}); continuing it`);
      }
      return runClusterSession(
        {
          kind: 'local',
          workers,
          threadsPerWorker: f.threadsPerWorker ?? 1,
          backend: run.backend,
          store: f.store,
          ...(f.gpus ? { gpus: f.gpus } : {}),
          ...(raw.natsServerBin ? { natsServerBin: raw.natsServerBin } : {}),
          // checkpoints in the object store: the launch's JetStream files, served again
          ...(run.checkpointStore === 'nats'
            ? { checkpointStore: 'nats' as const, jetstreamDir: localJetstreamDir(run.checkpointDir) }
            : {}),
        },
        {
          workers,
          start: async (client) => {
            const info = await client.resumeRun({ run_id: run.id, workers, compression: f.compression ?? '' });
            for (const w of info.warnings) warn(`bnn: warning: ${w}`);
            return {
              runId: run.id,
              result: { resumedFrom: info.resumed_from || null, resumedStep: info.resumed_step, warnings: info.warnings },
            };
          },
          header: (runId, where, r) => [
            `bnn: resuming run ${runId} from ${r.resumedFrom ? `${String(r.resumedFrom)} (step ${String(r.resumedStep)})` : 'the start (no good checkpoint)'} ` +
              `with ${workers} local worker(s), coordinator ${where.coordinator}, nats ${where.natsUrl}`,
          ],
        },
        { io: ctx.io, log: ctx.log, json: raw.json === true, quiet: raw.quiet === true, store: f.store },
      );
    }),
  );
}

/** `bnn resume --coordinator host:port <run>`: ResumeRun on a running cluster, followed like `bnn launch --coordinator`. */
async function resumeRemote(id: string, raw: ResumeFlags, ctx: CommandContext): Promise<number> {
  refuseFlags(
    {
      '--local': raw.local,
      '--threads-per-worker': raw.threadsPerWorker,
      '--gpus': raw.gpus,
      '--nats-server-bin': raw.natsServerBin,
      '--force': raw.force,
    },
    "applies to a cluster started here, not with --coordinator (the cluster's coordinator decides)",
  );
  const f = parseFlags(remoteFlags, raw);
  const tls = clientTlsFromFlags(raw);
  const warn = (line: string) => {
    if (!raw.json) ctx.log.warn(line);
  };
  let workers = f.workers ?? 0;
  return runClusterSession(
    { kind: 'remote', address: f.coordinator, token: clusterToken(raw.token), tls, connectTimeoutMs: 30_000 },
    {
      get workers() {
        return workers;
      },
      start: async (client) => {
        const info = await client.resumeRun({ run_id: id, workers, compression: f.compression ?? '', priority: f.priority ?? 0 });
        workers = info.world_size || workers;
        for (const w of info.warnings) warn(`bnn: warning: ${w}`);
        return {
          runId: info.run_id,
          result: { resumedFrom: info.resumed_from || null, resumedStep: info.resumed_step, warnings: info.warnings },
        };
      },
      header: (runId, _where, r) => [
        `bnn: resuming run ${runId} from ${r.resumedFrom ? `${String(r.resumedFrom)} (step ${String(r.resumedStep)})` : 'the start (no good checkpoint)'} ` +
          `on the cluster at ${f.coordinator}${tls ? ' (TLS)' : ''}`,
      ],
    },
    { io: ctx.io, log: ctx.log, json: raw.json === true, quiet: raw.quiet === true, detach: raw.detach === true },
  );
}
