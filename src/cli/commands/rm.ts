import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { fileFlag, parseFlags } from '../../config/flags.js';
import { deleteRun, getRun, openStore, withStoreErrors, type Store } from '../../store/index.js';
import type { RunRow } from '../../store/schema.js';
import { UserError } from '../../util/errors.js';
import {
  cliCheckpointStores,
  deleteFiles,
  formatBytes,
  refuseIfLive,
  removeRows,
  requireNatsFor,
  runCheckpointFiles,
  natsTarget,
} from '../checkpoint-files.js';
import { action, type CommandContext } from '../command.js';
import { addNatsAuthOptions, type NatsAuthFlags } from '../security-options.js';
import { ENV, envOption } from '../../config/environment.js';

export interface StoreNatsFlags extends NatsAuthFlags {
  store: string;
  nats?: string;
  json?: boolean;
}

interface RmFlags extends StoreNatsFlags {
  purge?: boolean;
  force?: boolean;
}

const flagsSchema = z.object({ store: fileFlag, nats: z.string().min(1).optional() });

/** The experiment database (it must exist: these commands never create one) opened for writing. */
export function openExistingStore(path: string): Store {
  if (!existsSync(path))
    throw new UserError(`--store: ${path} does not exist (pass the experiment database that holds the runs)`, { exitCode: 2 });
  return openStore(path);
}

/** One run's line of the result. */
interface RemovedRun {
  runId: string;
  files: number;
  bytesFreed: number;
  purged: boolean;
  failed: { location: string; problem: string }[];
}

/** `bnn rm <run…>`: deletes runs' checkpoint files (and with --purge the runs), saying how much that freed. */
export function registerRm(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('rm')
    .description(
      "delete runs' checkpoint files (local or in the NATS object store) and print the space freed; --purge also deletes the runs' rows",
    )
    .argument('<run...>', 'run ids or unique prefixes')
    .addOption(envOption('--store <file>', 'experiment database holding the runs', ENV.store, './runs/bnn.db'))
    .option('--purge', 'also delete the runs themselves and all their data in the database')
    .option('--force', 'remove a PENDING or RUNNING run whose owner cannot be checked (another host)')
    .option('--nats <url>', 'NATS server holding object-store checkpoints (nats-os://…): needed to delete those')
    .option('--json', 'print the result as one JSON object');
  addNatsAuthOptions(cmd, 'worker').action(
    action(ctx, async (ids: string[], raw: RmFlags, command: Command) => {
      const f = parseFlags(flagsSchema, raw);
      const store = openExistingStore(f.store);
      const stores = cliCheckpointStores(natsTarget(raw, f.nats, command));
      try {
        // every check before anything is deleted: the ids, that nothing trains them, the object store
        const rows = new Map<string, RunRow>();
        for (const id of ids) {
          const row = withStoreErrors(store, () => getRun(store.db, id));
          rows.set(row.id, row);
        }
        for (const row of rows.values()) refuseIfLive(row, 'bnn rm', raw.force === true);
        const plans = [];
        for (const row of rows.values()) {
          const plan = await runCheckpointFiles(store.db, row, stores);
          requireNatsFor(row.id, [...plan.rows.map((r) => r.path), ...plan.files.map((x) => x.location)], stores);
          plans.push({ row, ...plan });
        }
        const out: RemovedRun[] = [];
        for (const { row, rows: ckpts, files } of plans) {
          withStoreErrors(store, () => removeRows(store.db, ckpts));
          const r = await deleteFiles(
            stores,
            files.map((x) => x.location),
          );
          if (raw.purge) withStoreErrors(store, () => deleteRun(store.db, row.id));
          out.push({ runId: row.id, files: r.deleted, bytesFreed: r.bytesFreed, purged: raw.purge === true, failed: r.failed });
        }
        const total = out.reduce((s, r) => s + r.bytesFreed, 0);
        if (raw.json) ctx.io.stdout.write(`${JSON.stringify({ runs: out, bytesFreed: total })}\n`);
        else {
          for (const r of out) {
            ctx.io.stdout.write(
              `${r.runId}: ${r.files} checkpoint file(s), ${formatBytes(r.bytesFreed)} freed${r.purged ? '; run deleted' : ''}\n`,
            );
            for (const x of r.failed) ctx.io.stderr.write(`bnn: warning: ${x.location} not deleted: ${x.problem}\n`);
          }
          ctx.io.stdout.write(`total: ${formatBytes(total)} freed\n`);
        }
        return out.some((r) => r.failed.length > 0) ? 1 : 0;
      } finally {
        await stores.close();
        store.close();
      }
    }),
  );
}
