import { compareNotes, compareTable, formatMetric } from '../query/compare-format.js';
import { bytes, count, joulesPerSample, type Column } from '../query/format.js';
import type { ReportData } from './data.js';

export interface Table {
  columns: Column[];
  rows: string[][];
}

/** The comparison table (the cells `bnn compare` prints) and its notes. */
export function comparisonTable(data: ReportData): Table & { notes: string[] } {
  return { ...compareTable(data.compare), notes: compareNotes(data.compare) };
}

/** One row per compared run. */
export function runsTable(data: ReportData): Table {
  const { metric, by } = data.compare;
  return {
    columns: [
      { header: 'RUN' },
      { header: 'NAME' },
      { header: by.toUpperCase() },
      { header: 'SEED', align: 'right' },
      { header: metric, align: 'right' },
      { header: 'SIZE', align: 'right' },
      { header: 'SAMPLES/S', align: 'right' },
      { header: 'J/SAMPLE', align: 'right' },
    ],
    rows: data.runs.map((r) => [
      r.id,
      r.name,
      r.group,
      String(r.seed),
      formatMetric(metric, r.value),
      bytes(r.sizeBytes),
      count(r.samplesPerS),
      joulesPerSample(r.joulesPerSample, r.energySource),
    ]),
  };
}
