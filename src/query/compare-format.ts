import { ACCURACY_METRICS, type CompareGroup, type CompareResult, type MetricName } from './compare.js';
import { bytes, count, fixed, joulesPerSample, pValue, type Column } from './format.js';

/**
 * The cells of the comparison table, as `bnn compare` prints them: one source for the
 * terminal table and the report, so both show the same numbers.
 */
export function compareTable(result: CompareResult): { columns: Column[]; rows: string[][] } {
  const value = (x: number | null) => formatMetric(result.metric, x);
  const delta = (g: CompareGroup) => {
    if (g.delta === null) return '-';
    if (g.key === result.baseline) return 'baseline';
    const sign = g.delta >= 0 ? '+' : '-';
    return ACCURACY_METRICS.has(result.metric) ? `${sign}${Math.abs(g.delta * 100).toFixed(2)} pp` : `${sign}${value(Math.abs(g.delta))}`;
  };
  return {
    columns: [
      { header: result.by.toUpperCase() },
      { header: 'N', align: 'right' },
      { header: `${result.metric} MEAN ± STD`, align: 'right' },
      { header: 'Δ VS BASELINE', align: 'right' },
      { header: 't', align: 'right' },
      { header: 'df', align: 'right' },
      { header: 'p', align: 'right' },
      { header: 'SIZE', align: 'right' },
      { header: 'SAMPLES/S', align: 'right' },
      { header: 'J/SAMPLE', align: 'right' },
    ],
    rows: result.groups.map((g) => [
      g.key,
      String(g.n),
      g.mean === null ? '-' : `${value(g.mean)} ± ${g.std === null ? '-' : value(g.std)}`,
      delta(g),
      g.t === null ? (g.noTest === 'baseline' ? '' : `- (${g.noTest})`) : fixed(g.t, 3),
      fixed(g.df, 2),
      pValue(g.p),
      bytes(g.sizeBytes),
      count(g.samplesPerS),
      joulesPerSample(g.joulesPerSample, g.energySource),
    ]),
  };
}

/** The notes printed under the comparison table. */
export function compareNotes(result: CompareResult): string[] {
  const notes = [`Welch's two-sided t-test of each group against ${result.baseline}; std is the sample std (n − 1).`];
  if (result.groups.some((g) => g.energyEstimated)) {
    notes.push('J/sample marked estimate is CPU time × assumed watts per core, not a measurement.');
  }
  return notes;
}

/** A metric value as shown: accuracies as percentages, sizes in bytes, times in seconds. */
export function formatMetric(metric: MetricName, x: number | null): string {
  if (x === null) return '-';
  if (ACCURACY_METRICS.has(metric)) return `${(x * 100).toFixed(2)}%`;
  if (metric === 'model_size_bytes' || metric === 'packed_size_bytes') return bytes(x);
  if (metric === 'wall_time_s') return `${x.toFixed(1)}s`;
  return x.toFixed(1);
}
