import type { Command } from 'commander';
import { addQueryOutputOptions, jsonText, queryOutputFlags, queryOutputOf, type QueryOutputFlags } from '../../query/cli.js';
import { count, duration, pct, renderTable, toCsv } from '../../query/format.js';
import { withQueryStore } from '../../query/open.js';
import { abandonedNote, type ShownRun } from '../../query/liveness.js';
import { DEFAULT_RUNS_LIMIT, queryShownRuns, runsQueryFlags, runsQueryOf, SORT_KEYS, type RunsQueryFlags } from '../../query/runs.js';
import { action, type CommandContext } from '../command.js';
import { parseFlags } from '../../config/flags.js';

type RunsFlags = RunsQueryFlags & QueryOutputFlags;

const flagsSchema = runsQueryFlags.extend(queryOutputFlags.shape);

/** Columns of `bnn runs --csv`, named as in the database (`status` as shown, `stored_status` as stored). */
const CSV_COLUMNS: readonly [string, (r: ShownRun) => unknown][] = [
  ['id', (r) => r.id],
  ['name', (r) => r.name],
  ['status', (r) => r.status],
  ['model', (r) => r.model],
  ['precision', (r) => r.precision],
  ['dataset', (r) => r.dataset],
  ['seed', (r) => r.seed],
  ['tags', (r) => r.tags.join(' ')],
  ['created_at', (r) => r.createdAt],
  ['started_at', (r) => r.startedAt],
  ['finished_at', (r) => r.finishedAt],
  ['final_test_acc', (r) => r.finalTestAcc],
  ['best_test_acc', (r) => r.bestTestAcc],
  ['samples_per_s', (r) => r.samplesPerS],
  ['wall_time_s', (r) => r.wallTimeS],
  ['model_size_bytes', (r) => r.modelSizeBytes],
  ['packed_size_bytes', (r) => r.packedSizeBytes],
  ['backend', (r) => r.backend],
  ['threads', (r) => r.threads],
  ['code_version', (r) => r.codeVersion],
  ['config_hash', (r) => r.configHash],
  ['error', (r) => r.error],
  ['stored_status', (r) => r.storedStatus],
  ['owner_host', (r) => r.ownerHost],
  ['owner_pid', (r) => r.ownerPid],
];

/** `bnn runs`: the recorded runs, filtered and sorted. */
export function registerRuns(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('runs')
    .description('list recorded runs (newest first), with filters')
    .option(
      '--status <s>',
      'PENDING, RUNNING, COMPLETED, FAILED, CANCELLED or ABANDONED (RUNNING, its process gone; comma-separated for several)',
    )
    .option('--model <arch>', 'architecture (model.arch)')
    .option('--precision <p>', 'model precision')
    .option('--dataset <name>', 'data set')
    .option('--tag <tag>', 'runs carrying this tag')
    .option('--since <date>', 'created at or after (2025-01-31 or 2025-01-31T12:00:00Z)')
    .option('--until <date>', 'created at or before (a bare date includes that whole UTC day)')
    .option('--name <text>', 'name contains this text (case-insensitive)')
    .option('--sort <key>', `sort by ${SORT_KEYS.join(', ')} (ascending unless --desc; default: created, newest first)`)
    .option('--desc', 'sort descending')
    .option('--asc', 'sort ascending')
    .option('--limit <n>', `at most this many runs (default ${DEFAULT_RUNS_LIMIT})`);
  addQueryOutputOptions(cmd).action(
    action(ctx, async (raw: RunsFlags) => {
      const flags = parseFlags(flagsSchema, raw);
      const output = queryOutputOf(flags, (line) => ctx.io.stderr.write(`${line}\n`));
      const query = runsQueryOf(flags);
      const rows = withQueryStore(output.storePath, output.store, ({ db }) => queryShownRuns(db, query));
      if (output.mode === 'json') {
        ctx.io.stdout.write(jsonText(rows));
      } else if (output.mode === 'csv') {
        ctx.io.stdout.write(
          toCsv(
            CSV_COLUMNS.map(([h]) => h),
            rows.map((r) => CSV_COLUMNS.map(([, get]) => get(r))),
          ),
        );
      } else if (rows.length === 0) {
        ctx.io.stderr.write('no runs match\n');
      } else {
        ctx.io.stdout.write(runsTable(rows));
        if (rows.length === query.limit) ctx.io.stderr.write(`(first ${query.limit}; raise --limit for more)\n`);
        for (const r of rows) {
          if (r.status === 'ABANDONED') ctx.io.stderr.write(`${r.id} ABANDONED: ${abandonedNote(r, output.storePath)}\n`);
          if (r.waiting) ctx.io.stderr.write(`${r.id} PENDING: ${r.waiting}\n`);
        }
      }
      return 0;
    }),
  );
}

function runsTable(rows: readonly ShownRun[]): string {
  return renderTable(
    [
      { header: 'ID' },
      { header: 'NAME' },
      { header: 'STATUS' },
      { header: 'MODEL' },
      { header: 'PRECISION' },
      { header: 'DATASET' },
      { header: 'TEST ACC', align: 'right' },
      { header: 'BEST', align: 'right' },
      { header: 'SAMPLES/S', align: 'right' },
      { header: 'WALL', align: 'right' },
      { header: 'CREATED (UTC)' },
    ],
    rows.map((r) => [
      r.id,
      r.name,
      r.status,
      r.model,
      r.precision,
      r.dataset,
      pct(r.finalTestAcc),
      pct(r.bestTestAcc),
      count(r.samplesPerS),
      duration(r.wallTimeS),
      r.createdAt.slice(0, 16).replace('T', ' '),
    ]),
  );
}
