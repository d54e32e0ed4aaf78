import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { action, type CommandContext } from '../command.js';
import { UserError } from '../../util/errors.js';
import { getRun, getWorker, listMembers, openStore } from '../../store/index.js';
import type { CoordinatorClient } from '../../rpc/index.js';
import { EXIT, isTerminal, onRunEvent, pct, type EpochEvent, type Terminal } from './run-events.js';

/** The flags `bnn launch --local` and `bnn resume` share: the local cluster and the output. */
export interface LocalClusterFlags extends Record<string, unknown> {
  local?: string;
  threadsPerWorker: string;
  compression?: string;
  natsServerBin?: string;
  json?: boolean;
  quiet?: boolean;
}

interface ResumeFlags extends LocalClusterFlags {
  store: string;
  force?: boolean;
}

const flagsSchema = z.object({
  local: z.coerce.number({ error: () => '--local: expected a worker count from 1 to 64' }).int().min(1).max(64).optional(),
  threadsPerWorker: z.coerce.number().int().min(0).max(1024),
  compression: z.enum(['none', 'fp16', 'sign-ef']).optional(),
});

/** What to type to continue a run that did not complete. */
export function resumeHint(runId: string, store: string): string {
  return `bnn: continue it from its last checkpoint with: bnn resume ${runId} --store ${store}`;
}

export interface FollowResult {
  status: Terminal;
  error: string;
  epochs: EpochEvent[];
}

/**
 * Follows one run's WatchCluster events until it ends: epoch lines and generation changes
 * through `say`. `watch` must have been opened before the run was started or resumed.
 */
export async function followRun(client: CoordinatorClient, watch: ReturnType<CoordinatorClient['watchCluster']>, runId: string,
  say: (line: string) => void, interrupted: () => boolean): Promise<FollowResult> {
  const epochs: EpochEvent[] = [];
  for await (const ev of watch) {
    const end = onRunEvent(ev, runId, epochs, say);
    if (end) return { ...end, epochs };
  }
  const final = await client.getRun({ run_id: runId }).catch(() => null);
  const status = isTerminal(final?.status) ? final.status : interrupted() ? 'CANCELLED' : 'FAILED';
  return { status, error: final?.error || 'the coordinator went away', epochs };
}

/** A RUNNING run whose members' heartbeats still reach the store within this window has a live cluster. */
const ALIVE_WINDOW_MS = 5_000;

/**
 * The run, the world size of its last generation (0 when it never ran) and, for a RUNNING run,
 * the most recent heartbeat any member of that generation left in the store.
 */
function lastWorldSize(storePath: string, runId: string): { id: string; status: string; worldSize: number; backend: string; lastSeen: { worker: string; ageMs: number } | null } {
  const store = openStore(storePath, { readonly: true });
  try {
    const row = getRun(store.db, runId);
    const members = listMembers(store.db, row.id);
    const last = members.reduce((g, m) => Math.max(g, m.generation), 0);
    const current = members.filter((m) => m.generation === last);
    let lastSeen: { worker: string; ageMs: number } | null = null;
    for (const m of current) {
      const w = getWorker(store.db, m.workerId);
      const ageMs = w ? Date.now() - Date.parse(w.lastSeen) : Infinity;
      if (!lastSeen || ageMs < lastSeen.ageMs) lastSeen = { worker: m.workerId, ageMs };
    }
    return { id: row.id, status: row.status, worldSize: current[0]?.worldSize ?? 0, backend: row.config.engine.backend, lastSeen };
  } finally {
    store.close();
  }
}

/** `bnn resume <run>`: nats-server, a coordinator and N workers on this host continue a run from its last good checkpoint. */
export function registerResume(program: Command, ctx: CommandContext): void {
  program
    .command('resume')
    .description('continue a run whose cluster died (or that was cancelled) from its newest good checkpoint, on nats-server, a coordinator and N workers started on this host')
    .argument('<run>', 'run id or a unique prefix of it')
    .option('--store <file>', 'experiment database holding the run', './runs/bnn.db')
    .option('--local <n>', 'workers to start (default: the world size of the run\'s last generation)')
    .option('--threads-per-worker <n>', 'engine threads of each worker', '1')
    .option('--compression <mode>', 'gradient all-reduce wire format: none, fp16, sign-ef (default: the run\'s)')
    .option('--nats-server-bin <path>', 'nats-server executable (default: nats-server on PATH, or NATS_SERVER_BIN)')
    .option('--json', 'print the result as one JSON object on stdout (no progress lines)')
    .option('--quiet', 'no progress lines')
    .option('--force', 'resume a RUNNING run even though its workers still heartbeat')
    .action(action(ctx, async (id: string, raw: ResumeFlags) => {
      const parsed = flagsSchema.safeParse(raw);
      if (!parsed.success) throw new UserError(parsed.error.issues.map((i) => i.message.startsWith('--') ? i.message : `--${String(i.path[0])}: ${i.message}`).join('; '), { exitCode: 2 });
      const f = parsed.data;
      if (!existsSync(raw.store)) throw new UserError(`--store: ${raw.store} does not exist (pass the experiment database that holds the run)`, { exitCode: 2 });
      let run = lastWorldSize(raw.store, id);
      if (run.status === 'COMPLETED') throw new UserError(`run ${run.id} has COMPLETED: nothing to resume`);
      // A RUNNING run may still have its cluster: its members' heartbeats keep reaching the
      // store (about once a second). Seen recently: wait out the window and look again.
      if (run.status === 'RUNNING' && !raw.force && run.lastSeen && run.lastSeen.ageMs < ALIVE_WINDOW_MS) {
        const before = run.lastSeen.ageMs;
        await new Promise((r) => setTimeout(r, ALIVE_WINDOW_MS - before + 300));
        run = lastWorldSize(raw.store, id);
        if (run.status !== 'RUNNING' || (run.lastSeen && run.lastSeen.ageMs < ALIVE_WINDOW_MS)) {
          throw new UserError(`run ${run.id} is ${run.status}${run.lastSeen ? ` and its worker ${run.lastSeen.worker} heartbeated ${(run.lastSeen.ageMs / 1000).toFixed(1)} s ago` : ''}: ` +
            'its cluster is still alive (stop it first, or pass --force if it is gone)');
        }
      }
      const workers = f.local ?? (run.worldSize || 1);
      const say = (line: string) => { if (!raw.quiet && !raw.json) ctx.io.stderr.write(`${line}\n`); };
      const warn = (line: string) => { if (!raw.json) ctx.io.stderr.write(`${line}\n`); };
      const { startLocalCluster } = await import('../../launch/local-cluster.js');
      const { connectCoordinator } = await import('../../rpc/index.js');

      let interrupted = false;
      const t0 = performance.now();
      const cluster = await startLocalCluster({
        workers, threadsPerWorker: f.threadsPerWorker, backend: run.backend, store: raw.store,
        ...(raw.natsServerBin ? { natsServerBin: raw.natsServerBin } : {}),
        log: (line) => { if (!raw.quiet && !raw.json) ctx.io.stderr.write(`${line}\n`); },
      });
      const client = connectCoordinator(cluster.coordinator, { token: cluster.token });
      const watch = client.watchCluster({ run_id: run.id });
      let started = false;
      const onSigint = () => {
        interrupted = true;
        if (started) void client.cancelRun({ run_id: run.id }).catch(() => undefined);
        else watch.cancel();
      };
      process.once('SIGINT', onSigint);
      let result: FollowResult = { status: 'FAILED', error: '', epochs: [] };
      let resumedFrom = '';
      let resumedStep = 0;
      let warnings: string[] = [];
      try {
        await client.waitForReady(30_000);
        const info = await client.resumeRun({ run_id: run.id, workers, compression: f.compression ?? '' });
        started = true;
        ({ resumed_from: resumedFrom, resumed_step: resumedStep, warnings } = info);
        for (const w of warnings) warn(`bnn: warning: ${w}`);
        say(`bnn: resuming run ${run.id} from ${resumedFrom ? `${resumedFrom} (step ${resumedStep})` : 'the start (no good checkpoint)'} ` +
          `with ${workers} local worker(s), coordinator ${cluster.coordinator}, nats ${cluster.natsUrl}`);
        result = await followRun(client, watch, run.id, say, () => interrupted);
      } finally {
        process.removeListener('SIGINT', onSigint);
        watch.cancel();
        client.close();
        await cluster.stop(10_000);
      }
      const wallTimeS = (performance.now() - t0) / 1000;
      const last = result.epochs.at(-1);
      if (raw.json) {
        ctx.io.stdout.write(`${JSON.stringify({
          runId: run.id, status: result.status, error: result.error || null, workers, resumedFrom: resumedFrom || null, resumedStep, warnings,
          wallTimeS, finalTestAcc: last?.testAcc ?? null, epochs: result.epochs,
        })}\n`);
      } else if (!raw.quiet) {
        ctx.io.stdout.write(`run ${run.id} ${result.status}${result.error ? ` (${result.error})` : ''} in ${wallTimeS.toFixed(1)} s` +
          (last?.testAcc != null ? `; final test accuracy ${pct(last.testAcc)}` : '') + '\n');
      }
      if (result.status !== 'COMPLETED' && !raw.json) ctx.io.stderr.write(`${resumeHint(run.id, raw.store)}\n`);
      return EXIT[result.status] ?? 1;
    }));
}
