import { z } from 'zod';
import { choiceFlag, parseFlags } from '../config/flags.js';
import { compareRows, type CompareRow } from '../store/compare.js';
import type { StoreDb } from '../store/db.js';
import type { RunRow } from '../store/schema.js';
import { joulesPerSampleOf, sourceLabel } from './energy.js';
import { QueryFlagError } from './errors.js';
import { runIdListFlag } from './flags.js';
import { resolveRunIds, runFilterFlags, runFilterOf, type RunFilter, type RunFilterFlags } from './runs.js';
import { mean, sampleStd, welchTTest, type NoTestReason } from './stats.js';

/** Fields runs can be grouped by, as typed after `--by`. */
export const GROUP_FIELDS = ['precision', 'model', 'dataset', 'name'] as const;
export type GroupField = (typeof GROUP_FIELDS)[number];

/** Metrics `--metric` accepts, and the run column each reads. */
export const METRICS = {
  test_acc: 'finalTestAcc',
  best_test_acc: 'bestTestAcc',
  samples_per_s: 'samplesPerS',
  wall_time_s: 'wallTimeS',
  model_size_bytes: 'modelSizeBytes',
  packed_size_bytes: 'packedSizeBytes',
} as const satisfies Record<string, keyof RunRow>;
export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];

/** Metrics that are fractions in [0, 1] and shown as percentages. */
export const ACCURACY_METRICS: ReadonlySet<MetricName> = new Set(['test_acc', 'best_test_acc']);

/** The group that is the baseline when present and none is named. */
export const PREFERRED_BASELINE = 'fp32';

export interface CompareQuery {
  by: GroupField;
  metric: MetricName;
  /** Group key to test the others against; default `fp32` when present, else the first group. */
  baseline?: string;
  /** Restricts the COMPLETED runs compared. */
  filter: RunFilter;
  /** Only these runs: ids or unique id prefixes, resolved when the query runs. */
  runIds?: readonly string[];
  /** Compute J/sample (default true; read from the runs' totals); false leaves it null. */
  energy?: boolean;
}

export interface CompareFlags extends RunFilterFlags {
  by?: string;
  metric?: string;
  baseline?: string;
  /** Comma-separated run ids or id prefixes. */
  runs?: string;
  /** commander's `--no-energy` sets this false. */
  energy?: boolean;
}

/** The schema of the flags that make a CompareQuery (`bnn compare`, `bnn report`); COMPLETED runs only, so no --status. */
export const compareQueryFlags = runFilterFlags.omit({ status: true }).extend({
  by: choiceFlag(GROUP_FIELDS).default('precision'),
  metric: choiceFlag(METRIC_NAMES).default('test_acc'),
  baseline: z.string().optional(),
  runs: runIdListFlag.optional(),
  energy: z.boolean().optional(),
});

export function compareQueryOf(flags: z.output<typeof compareQueryFlags>): CompareQuery {
  return {
    by: flags.by,
    metric: flags.metric,
    ...(flags.baseline === undefined ? {} : { baseline: flags.baseline }),
    filter: runFilterOf(flags),
    ...(flags.runs === undefined ? {} : { runIds: flags.runs }),
    ...(flags.energy === false ? { energy: false } : {}),
  };
}

/** Checks compare flags before any I/O: FlagError (exit 2) naming each bad flag, its value and what is valid. */
export function parseCompareQuery(flags: CompareFlags): CompareQuery {
  return compareQueryOf(parseFlags(compareQueryFlags, flags));
}

export interface CompareGroup {
  /** The value of the grouping field. */
  key: string;
  /** Runs with a value of the metric. */
  n: number;
  /** Ids of those runs. */
  runIds: string[];
  mean: number | null;
  /** Sample standard deviation (n − 1); null below two runs. */
  std: number | null;
  /** mean − baseline mean; 0 for the baseline itself. */
  delta: number | null;
  /** Welch's t against the baseline (positive: this group is higher). Null when not tested. */
  t: number | null;
  df: number | null;
  /** Two-sided p. */
  p: number | null;
  /** Why t, df and p are null. */
  noTest: NoTestReason | null;
  /** Mean over runs of packed size where recorded, else fp32 size. */
  sizeBytes: number | null;
  samplesPerS: number | null;
  /** Mean over the group's runs with energy of joules per training sample; null when none has energy. */
  joulesPerSample: number | null;
  /** Runs that joulesPerSample averages over. */
  energyRuns: number;
  /** Energy sources of those runs (`rapl`, `nvml+rapl`, `estimate`, ...); null when none. */
  energySource: string | null;
  /** True when any of that energy is an estimate, not a measurement: label it so wherever shown. */
  energyEstimated: boolean;
}

export interface CompareResult {
  by: GroupField;
  metric: MetricName;
  /** Null when there are no groups. */
  baseline: string | null;
  groups: CompareGroup[];
}

/**
 * Groups COMPLETED runs by a field and tests each group's metric against the baseline group
 * with Welch's t-test. Groups are sorted by key, the baseline first.
 */
export function compareRuns(db: StoreDb, query: CompareQuery): CompareResult {
  const filter = query.runIds === undefined ? query.filter : { ...query.filter, ids: resolveRunIds(db, query.runIds) };
  const selected = compareRows(db, filter);
  const byKey = new Map<string, CompareRow[]>();
  for (const run of selected) {
    const key = String(run[query.by]);
    const group = byKey.get(key);
    if (group === undefined) byKey.set(key, [run]);
    else group.push(run);
  }
  const keys = [...byKey.keys()].sort();
  if (keys.length === 0) {
    if (query.baseline !== undefined) throw new QueryFlagError('--baseline', query.baseline, 'a group with COMPLETED runs; none match');
    return { by: query.by, metric: query.metric, baseline: null, groups: [] };
  }
  let baseline: string;
  if (query.baseline !== undefined) {
    if (!byKey.has(query.baseline)) throw new QueryFlagError('--baseline', query.baseline, keys);
    baseline = query.baseline;
  } else {
    baseline = byKey.has(PREFERRED_BASELINE) ? PREFERRED_BASELINE : keys[0]!;
  }

  const column = METRICS[query.metric];
  const values = (rows: readonly CompareRow[]) => rows.filter((r) => r[column] !== null).map((r) => r[column] as number);
  const baseValues = values(byKey.get(baseline)!);
  const baseMean = mean(baseValues);

  const ordered = [baseline, ...keys.filter((k) => k !== baseline)];
  const groups = ordered.map((key): CompareGroup => {
    const rows = byKey.get(key)!;
    const xs = values(rows);
    const m = mean(xs);
    const test = key === baseline ? 'baseline' : welchTTest(xs, baseValues);
    const tested = typeof test === 'object' ? test : null;
    const sizes = rows.map((r) => r.packedSizeBytes ?? r.modelSizeBytes).filter((v): v is number => v !== null);
    const speeds = rows.map((r) => r.samplesPerS).filter((v): v is number => v !== null);
    const energies = query.energy === false ? [] : rows.map(joulesPerSampleOf).filter((e) => e !== undefined);
    return {
      key,
      n: xs.length,
      runIds: rows.filter((r) => r[column] !== null).map((r) => r.id),
      mean: m,
      std: sampleStd(xs),
      delta: key === baseline ? (m === null ? null : 0) : m === null || baseMean === null ? null : m - baseMean,
      t: tested?.t ?? null,
      df: tested?.df ?? null,
      p: tested?.p ?? null,
      noTest: typeof test === 'string' ? test : null,
      sizeBytes: mean(sizes),
      samplesPerS: mean(speeds),
      joulesPerSample: mean(energies.map((e) => e.joulesPerSample)),
      energyRuns: energies.length,
      energySource: sourceLabel(energies),
      energyEstimated: energies.some((e) => e.estimated),
    };
  });
  return { by: query.by, metric: query.metric, baseline, groups };
}
