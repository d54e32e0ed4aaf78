import type { Command } from 'commander';
import { addQueryOutputOptions, jsonText, queryOutputFlags, queryOutputOf, type QueryOutputFlags } from '../../query/cli.js';
import {
  compareQueryFlags,
  compareQueryOf,
  compareRuns,
  GROUP_FIELDS,
  METRIC_NAMES,
  PREFERRED_BASELINE,
  type CompareFlags,
  type CompareResult,
} from '../../query/compare.js';
import { compareNotes, compareTable } from '../../query/compare-format.js';
import { renderTable, toCsv } from '../../query/format.js';
import { withQueryStore } from '../../query/open.js';
import { action, type CommandContext } from '../command.js';
import { parseFlags } from '../../config/flags.js';

const flagsSchema = compareQueryFlags.extend(queryOutputFlags.shape);

const CSV_HEADER = [
  'group',
  'n',
  'mean',
  'std',
  'delta',
  't',
  'df',
  'p',
  'no_test',
  'size_bytes',
  'samples_per_s',
  'joules_per_sample',
  'energy_source',
  'run_ids',
];

/** The grouping, metric, baseline and run-filter options `bnn compare` and `bnn report` share (--runs aside). */
export function addCompareQueryOptions(cmd: Command): Command {
  return cmd
    .option('--by <field>', `group by ${GROUP_FIELDS.join(', ')} (default precision)`)
    .option('--metric <name>', `${METRIC_NAMES.join(', ')} (default test_acc)`)
    .option('--baseline <group>', `group the others are tested against (default ${PREFERRED_BASELINE} when present, else the first)`)
    .option('--model <arch>', 'only runs of this architecture')
    .option('--precision <p>', 'only runs of this precision')
    .option('--dataset <name>', 'only runs on this data set')
    .option('--tag <tag>', 'only runs carrying this tag')
    .option('--since <date>', 'only runs created at or after')
    .option('--until <date>', 'only runs created at or before')
    .option('--name <text>', 'only runs whose name contains this text');
}

/** `bnn compare`: COMPLETED runs grouped by a field, each group tested against a baseline (Welch's t). */
export function registerCompare(program: Command, ctx: CommandContext): void {
  const cmd = addCompareQueryOptions(
    program
      .command('compare')
      .description("compare COMPLETED runs grouped by a field: mean ± std of a metric and Welch's t-test against a baseline group"),
  )
    .option('--runs <ids>', 'only these runs (comma-separated ids or unique id prefixes)')
    .option('--no-energy', 'leave out J/sample');
  addQueryOutputOptions(cmd).action(
    action(ctx, async (raw: CompareFlags & QueryOutputFlags) => {
      const flags = parseFlags(flagsSchema, raw);
      const output = queryOutputOf(flags, (line) => ctx.io.stderr.write(`${line}\n`));
      const query = compareQueryOf(flags);
      const result = withQueryStore(output.storePath, output.store, ({ db }) => compareRuns(db, query));
      if (output.mode === 'json') ctx.io.stdout.write(jsonText(result));
      else if (output.mode === 'csv') {
        ctx.io.stdout.write(
          toCsv(
            CSV_HEADER,
            result.groups.map((g) => [
              g.key,
              g.n,
              g.mean,
              g.std,
              g.delta,
              g.t,
              g.df,
              g.p,
              g.noTest,
              g.sizeBytes,
              g.samplesPerS,
              g.joulesPerSample,
              g.energySource,
              g.runIds.join(' '),
            ]),
          ),
        );
      } else if (result.groups.length === 0) ctx.io.stderr.write('no COMPLETED runs match\n');
      else ctx.io.stdout.write(compareText(result));
      return 0;
    }),
  );
}

function compareText(result: CompareResult): string {
  const { columns, rows } = compareTable(result);
  return `${renderTable(columns, rows)}\n${compareNotes(result)
    .map((n) => `${n}\n`)
    .join('')}`;
}
