import type { Command } from 'commander';
import { addQueryOutputOptions, jsonText, parseQueryOutputFlags, type QueryOutputFlags } from '../../query/cli.js';
import {
  ACCURACY_METRICS,
  compareRuns,
  GROUP_FIELDS,
  METRIC_NAMES,
  parseCompareQuery,
  PREFERRED_BASELINE,
  type CompareFlags,
  type CompareGroup,
  type CompareResult,
  type MetricName,
} from '../../query/compare.js';
import { bytes, count, fixed, pValue, renderTable, toCsv } from '../../query/format.js';
import { withQueryStore } from '../../query/open.js';
import { action, type CommandContext } from '../command.js';

const CSV_HEADER = ['group', 'n', 'mean', 'std', 'delta', 't', 'df', 'p', 'no_test', 'size_bytes', 'samples_per_s', 'run_ids'];

/** `bnn compare`: COMPLETED runs grouped by a field, each group tested against a baseline (Welch's t). */
export function registerCompare(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('compare')
    .description("compare COMPLETED runs grouped by a field: mean ± std of a metric and Welch's t-test against a baseline group")
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
  addQueryOutputOptions(cmd).action(
    action(ctx, async (flags: CompareFlags & QueryOutputFlags) => {
      const output = parseQueryOutputFlags(flags);
      const query = parseCompareQuery(flags);
      const result = withQueryStore(output.storePath, output.store, ({ db }) => compareRuns(db, query));
      if (output.mode === 'json') ctx.io.stdout.write(jsonText(result));
      else if (output.mode === 'csv') {
        ctx.io.stdout.write(
          toCsv(
            CSV_HEADER,
            result.groups.map((g) => [g.key, g.n, g.mean, g.std, g.delta, g.t, g.df, g.p, g.noTest, g.sizeBytes, g.samplesPerS, g.runIds.join(' ')]),
          ),
        );
      } else if (result.groups.length === 0) ctx.io.stderr.write('no COMPLETED runs match\n');
      else ctx.io.stdout.write(compareText(result));
      return 0;
    }),
  );
}

function compareText(result: CompareResult): string {
  const accuracy = ACCURACY_METRICS.has(result.metric);
  const value = (x: number | null) => formatMetric(result.metric, x);
  const delta = (g: CompareGroup) => {
    if (g.delta === null) return '-';
    if (g.key === result.baseline) return 'baseline';
    const sign = g.delta >= 0 ? '+' : '-';
    return accuracy ? `${sign}${Math.abs(g.delta * 100).toFixed(2)} pp` : `${sign}${value(Math.abs(g.delta))}`;
  };
  const table = renderTable(
    [
      { header: result.by.toUpperCase() },
      { header: 'N', align: 'right' },
      { header: `${result.metric} MEAN ± STD`, align: 'right' },
      { header: 'Δ VS BASELINE', align: 'right' },
      { header: 't', align: 'right' },
      { header: 'df', align: 'right' },
      { header: 'p', align: 'right' },
      { header: 'SIZE', align: 'right' },
      { header: 'SAMPLES/S', align: 'right' },
    ],
    result.groups.map((g) => [
      g.key,
      String(g.n),
      g.mean === null ? '-' : `${value(g.mean)} ± ${g.std === null ? '-' : value(g.std)}`,
      delta(g),
      g.t === null ? (g.noTest === 'baseline' ? '' : `- (${g.noTest})`) : fixed(g.t, 3),
      fixed(g.df, 2),
      pValue(g.p),
      bytes(g.sizeBytes),
      count(g.samplesPerS),
    ]),
  );
  return `${table}\nWelch's two-sided t-test of each group against ${result.baseline}; std is the sample std (n − 1).\n`;
}

function formatMetric(metric: MetricName, x: number | null): string {
  if (x === null) return '-';
  if (ACCURACY_METRICS.has(metric)) return `${(x * 100).toFixed(2)}%`;
  if (metric === 'model_size_bytes' || metric === 'packed_size_bytes') return bytes(x);
  if (metric === 'wall_time_s') return `${x.toFixed(1)}s`;
  return x.toFixed(1);
}
