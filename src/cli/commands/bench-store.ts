import type { Command } from 'commander';
import { z } from 'zod';
import { existingStoreFile } from '../../query/open.js';
import { action, type CommandContext } from '../command.js';
import { fileFlag, numberFlag, parseFlags } from '../../config/flags.js';
import path from 'node:path';
import { packageRoot } from '../../native/addon.js';

interface BenchStoreFlags {
  runs?: string;
  epochs?: string;
  energyEpochs?: string;
  repeats?: string;
  cli?: boolean;
  keep?: boolean;
  db?: string;
  json?: boolean;
}

const flagsSchema = z.object({
  runs: numberFlag(z.number().int().min(1)).default(30_000),
  epochs: numberFlag(z.number().int().min(1)).default(100),
  energyEpochs: numberFlag(z.number().int().min(0)).optional(),
  repeats: numberFlag(z.number().int().min(1)).default(5),
  db: fileFlag.optional(),
});

/** Each query command must answer within this on the generated store (the issue's scale target). */
export const STORE_QUERY_TARGET_MS = 1000;

/** `bnn bench-store`: a research-scale experiment database (default 30,000 runs × 100 epochs) and the query times on it. */
export function registerBenchStore(program: Command, ctx: CommandContext): void {
  program
    .command('bench-store')
    .description('generate a research-scale experiment database in a temp folder and time bnn runs --limit 50 and bnn compare on it')
    .option('--runs <n>', 'runs to generate (default 30000)')
    .option('--epochs <n>', 'epoch metric rows per run (default 100)')
    .option('--energy-epochs <n>', 'energy samples per run, one per epoch (default: as many as --epochs; 0 for none)')
    .option('--repeats <n>', 'timed repetitions of each query (default 5)')
    .option('--cli', 'also time each query as a bnn child process (Node start-up included)')
    .option('--keep', 'keep the generated database and print its path')
    .option('--db <file>', 'time this store (one --keep left) instead of generating one')
    .option('--json', 'print the figures as JSON')
    .action(
      action(ctx, async (flags: BenchStoreFlags) => {
        const { runs, epochs, energyEpochs = epochs, repeats, db } = parseFlags(flagsSchema, flags);
        const { benchStore } = await import('../../bench/store.js');
        const result = benchStore({
          runs,
          epochs,
          energyEpochs,
          repeats,
          keep: flags.keep === true,
          ...(db === undefined ? {} : { existing: existingStoreFile(db) }),
          ...(flags.cli === true ? { cliEntry: { execPath: process.execPath, args: [path.join(packageRoot(), 'bin', 'bnn.js')] } } : {}),
          progress: (line) => ctx.io.stderr.write(`${line}\n`),
        });
        // Judged on the median: one slow repetition on a shared machine is not the store's doing.
        const within = result.queries.every((q) => q.reference === true || q.medianMs < STORE_QUERY_TARGET_MS);
        if (flags.json === true) {
          ctx.io.stdout.write(`${JSON.stringify({ ...result, targetMs: STORE_QUERY_TARGET_MS, withinTarget: within }, null, 2)}\n`);
        } else {
          const out = ctx.io.stdout;
          out.write(
            `bnn bench-store: ${result.generated.runs.toLocaleString('en-US')} runs (${result.generated.completed.toLocaleString('en-US')} COMPLETED), `,
          );
          out.write(
            `${result.generated.epochRows.toLocaleString('en-US')} epoch rows, ${result.generated.energyRows.toLocaleString('en-US')} energy rows, `,
          );
          if (flags.db !== undefined) out.write(`${(result.dbBytes / 2 ** 20).toFixed(1)} MiB, kept from an earlier run\n`);
          else {
            out.write(`${(result.dbBytes / 2 ** 20).toFixed(1)} MiB, generated in ${result.generateS.toFixed(1)} s`);
            out.write(` (run totals filled in ${(result.generated.totalsMs / 1000).toFixed(1)} s: the schema-4 backfill)\n`);
          }
          for (const q of result.queries) {
            out.write(
              `${q.command}: median ${q.medianMs.toFixed(1)} ms (CPU ${q.medianCpuMs.toFixed(1)} ms), max ${q.maxMs.toFixed(1)} ms over ${q.runsMs.length} (open + query + close)`,
            );
            out.write(`${q.cliMs === undefined ? '' : `; bnn process ${q.cliMs.toFixed(0)} ms`}; ${q.rows} rows\n`);
            for (const step of q.plan) out.write(`  plan: ${step}\n`);
          }
          out.write(`target: each command under ${STORE_QUERY_TARGET_MS} ms: ${within ? 'met' : 'NOT met'}\n`);
          if (result.dbPath !== null) out.write(`database kept: ${result.dbPath}\n`);
        }
        return 0;
      }),
    );
}
