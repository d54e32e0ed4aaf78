import type { Command } from 'commander';
import { basename, dirname } from 'node:path';
import { z } from 'zod';
import { isObjectLocation, LocalCheckpointStore, parseObjectLocation, type StoredCheckpoint } from '../../checkpoint/index.js';
import { fileFlag, parseFlags } from '../../config/flags.js';
import { parseRunConfig } from '../../config/index.js';
import { runLiveness } from '../../query/liveness.js';
import { allCheckpointPaths, listCheckpoints, listRuns, withStoreErrors } from '../../store/index.js';
import type { RunRow } from '../../store/schema.js';
import { cliCheckpointStores, deleteFiles, formatBytes, natsTarget, removeRows, retentionOf } from '../checkpoint-files.js';
import { action, type CommandContext } from '../command.js';
import { addNatsAuthOptions } from '../security-options.js';
import { openExistingStore, type StoreNatsFlags } from './rm.js';
import { ENV, envOption } from '../../config/environment.js';

interface GcFlags extends StoreNatsFlags {
  dryRun?: boolean;
  orphans?: boolean;
}

const flagsSchema = z.object({ store: fileFlag, nats: z.string().min(1).optional() });

interface GcLine {
  /** The run, or null for orphans. */
  runId: string | null;
  files: string[];
  bytes: number;
}

/** Whether something may still train the run (PENDING or RUNNING and not ABANDONED): gc leaves it alone. */
const mayBeLive = (row: RunRow) => (row.status === 'PENDING' || row.status === 'RUNNING') && runLiveness(row)?.state !== 'gone';

/** `bnn gc`: retention applied to every run not training; with --orphans, checkpoint files no run names. */
export function registerGc(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('gc')
    .description(
      "apply checkpoint retention (train.keepCheckpoints newest, plus the best epoch's) to every run that is not training, and print the space freed",
    )
    .addOption(envOption('--store <file>', 'experiment database', ENV.store, './runs/bnn.db'))
    .option('--dry-run', 'print what would be deleted, delete nothing')
    .option('--orphans', "also delete checkpoint files in the runs' checkpoint directories (and the object store) that no run names")
    .option('--nats <url>', 'NATS server holding object-store checkpoints (nats-os://…); without it those are skipped')
    .option('--json', 'print the result as one JSON object');
  addNatsAuthOptions(cmd, 'worker').action(
    action(ctx, async (raw: GcFlags, command: Command) => {
      const f = parseFlags(flagsSchema, raw);
      const store = openExistingStore(f.store);
      const stores = cliCheckpointStores(natsTarget(raw, f.nats, command));
      const dry = raw.dryRun === true;
      const lines: GcLine[] = [];
      const skipped: string[] = [];
      const failed: { location: string; problem: string }[] = [];
      try {
        const runs = withStoreErrors(store, () => listRuns(store.db, { limit: 1_000_000 }));
        for (const row of runs) {
          if (mayBeLive(row)) continue;
          const { rows } = retentionOf(store.db, row);
          if (rows.length === 0) continue;
          if (!stores.hasObjects && rows.some((r) => isObjectLocation(r.path))) {
            skipped.push(row.id);
            continue;
          }
          if (dry) {
            const kept = new Set(
              listCheckpoints(store.db, row.id)
                .filter((r) => !rows.some((x) => x.id === r.id))
                .map((r) => r.path),
            );
            const files = [...new Set(rows.map((r) => r.path))].filter((p) => !kept.has(p));
            let bytes = 0;
            for (const p of files) bytes += (await stores.size(p)) ?? 0;
            lines.push({ runId: row.id, files, bytes });
          } else {
            const files = withStoreErrors(store, () => removeRows(store.db, rows));
            const r = await deleteFiles(stores, files);
            failed.push(...r.failed);
            lines.push({ runId: row.id, files, bytes: r.bytesFreed });
          }
        }
        if (raw.orphans) {
          const orphans = await findOrphans(store.db, runs, stores);
          const r = dry
            ? { bytesFreed: orphans.reduce((s, o) => s + o.bytes, 0), failed: [] }
            : await deleteFiles(
                stores,
                orphans.map((o) => o.location),
              );
          failed.push(...r.failed);
          if (orphans.length > 0) lines.push({ runId: null, files: orphans.map((o) => o.location), bytes: r.bytesFreed });
        }
        const total = lines.reduce((s, l) => s + l.bytes, 0);
        if (raw.json) {
          ctx.io.stdout.write(`${JSON.stringify({ dryRun: dry, runs: lines, bytesFreed: total, skipped, failed })}\n`);
        } else {
          const verb = dry ? 'would free' : 'freed';
          for (const l of lines) {
            ctx.io.stdout.write(`${l.runId ?? 'orphans'}: ${l.files.length} checkpoint file(s), ${formatBytes(l.bytes)} ${verb}\n`);
            for (const file of l.files) ctx.io.stdout.write(`  ${file}\n`);
          }
          ctx.io.stdout.write(`total: ${formatBytes(total)} ${verb}\n`);
          if (skipped.length > 0)
            ctx.io.stderr.write(
              `bnn: ${skipped.length} run(s) with checkpoints in the NATS object store skipped (${skipped.join(', ')}): pass --nats <url> to include them\n`,
            );
          for (const x of failed) ctx.io.stderr.write(`bnn: warning: ${x.location} not deleted: ${x.problem}\n`);
        }
        return failed.length > 0 ? 1 : 0;
      } finally {
        await stores.close();
        store.close();
      }
    }),
  );
}

/**
 * Checkpoint files in the runs' checkpoint directories (and the object store when reachable) that
 * no row names, except those of runs that may still be training (a file written, its row not yet).
 */
async function findOrphans(
  db: Parameters<typeof listCheckpoints>[0],
  runs: readonly RunRow[],
  stores: ReturnType<typeof cliCheckpointStores>,
): Promise<StoredCheckpoint[]> {
  const named = allCheckpointPaths(db);
  const live = new Set(runs.filter(mayBeLive).map((r) => r.id));
  const dirs = new Set(runs.map((r) => new LocalCheckpointStore(parseRunConfig(r.config, { source: `run ${r.id}` }).checkpointDir).root));
  const found: StoredCheckpoint[] = [];
  for (const dir of dirs) found.push(...(await new LocalCheckpointStore(dir).list()));
  if (stores.hasObjects) found.push(...(await (await stores.objects()).list()));
  const runOf = (location: string) =>
    isObjectLocation(location) ? (parseObjectLocation(location)?.name.split('/')[0] ?? '') : basename(dirname(location));
  return found.filter((f) => !named.has(f.location) && !live.has(runOf(f.location)));
}
