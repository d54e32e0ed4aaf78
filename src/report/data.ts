import type { StoreDb } from '../store/db.js';
import { runsWithTestAccuracy, testAccuracyCurves } from '../store/metrics.js';
import { listCompletedRuns } from '../store/run-queries.js';
import { compareRuns, METRICS, type CompareQuery, type CompareResult } from '../query/compare.js';
import { joulesPerSampleOf } from '../query/energy.js';
import { ReportError } from './errors.js';

/** Training curves are drawn for at most this many runs (the first by group, then creation). */
export const MAX_CURVE_RUNS = 60;

/** One compared run, as listed in the report. */
export interface ReportRun {
  id: string;
  name: string;
  /** Its group (the value of the `--by` field). */
  group: string;
  seed: number;
  createdAt: string;
  /** The compared metric's value. */
  value: number;
  /** Packed size where recorded, else fp32 size. */
  sizeBytes: number | null;
  samplesPerS: number | null;
  joulesPerSample: number | null;
  energySource: string | null;
  energyEstimated: boolean;
}

export interface CurvePoint {
  runId: string;
  group: string;
  epoch: number;
  testAcc: number;
}

export interface ReportData {
  /** ISO time the report was made. */
  generatedAt: string;
  /** Absolute path of the database read. */
  storePath: string;
  /** Exactly what `bnn compare` returns for the same query. */
  compare: CompareResult;
  /** The runs compared, by group (baseline first) then creation time. */
  runs: ReportRun[];
  /** Test accuracy per epoch of up to MAX_CURVE_RUNS runs (epochs without evaluation left out). */
  curves: CurvePoint[];
  /** Runs with a curve, and how many of the compared runs had one to draw before the cap. */
  curveRuns: number;
  curveRunsCapped: boolean;
}

/**
 * Everything a report shows, read in one pass. ReportError when no COMPLETED run matches
 * (a report of nothing is a mistake, not a result).
 */
export function gatherReport(db: StoreDb, query: CompareQuery, storePath: string, now: Date = new Date()): ReportData {
  const compare = compareRuns(db, query);
  const ids = compare.groups.flatMap((g) => g.runIds);
  if (ids.length === 0) {
    throw new ReportError(
      `no COMPLETED runs with a ${query.metric} value match${describeQuery(query)}; bnn runs --status completed lists what is recorded`,
    );
  }
  const groupOf = new Map(compare.groups.flatMap((g) => g.runIds.map((id) => [id, g.key] as const)));
  const order = new Map(ids.map((id, i) => [id, i]));
  const rows = listCompletedRuns(db, { ids }).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  const column = METRICS[query.metric];
  const reportRuns = rows.map((r): ReportRun => {
    const e = joulesPerSampleOf(r);
    return {
      id: r.id,
      name: r.name,
      group: groupOf.get(r.id)!,
      seed: r.seed,
      createdAt: r.createdAt,
      value: r[column] as number,
      sizeBytes: r.packedSizeBytes ?? r.modelSizeBytes,
      samplesPerS: r.samplesPerS,
      joulesPerSample: e?.joulesPerSample ?? null,
      energySource: e === undefined ? null : e.sources.join('+'),
      energyEstimated: e?.estimated ?? false,
    };
  });

  const withCurves = runsWithTestAccuracy(db, { ids }).sort((a, b) => order.get(a)! - order.get(b)!);
  const drawn = withCurves.slice(0, MAX_CURVE_RUNS);
  const curves =
    drawn.length === 0
      ? []
      : testAccuracyCurves(db, drawn).map((p) => ({ runId: p.runId, group: groupOf.get(p.runId)!, epoch: p.epoch, testAcc: p.testAcc }));

  return {
    generatedAt: now.toISOString(),
    storePath,
    compare,
    runs: reportRuns,
    curves,
    curveRuns: drawn.length,
    curveRunsCapped: withCurves.length > drawn.length,
  };
}

function describeQuery(query: CompareQuery): string {
  const parts = Object.entries(query.filter).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  if (query.runIds !== undefined) parts.push(`runs=${query.runIds.join(',')}`);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}
