import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { ACCURACY_METRICS, type CompareResult } from '../query/compare.js';
import type { ReportData } from './data.js';

/** One chart of the report: an id usable as a file name, a title, and the SVG text. */
export interface Chart {
  id: string;
  title: string;
  svg: string;
}

const WIDTH = 420;
const HEIGHT = 240;

/** One chart before rendering: its id, title and Vega-Lite spec. */
type ChartSpec = { id: string; title: string; spec: TopLevelSpec };

/** The grouping every per-group chart shares: the field's name, and an x axis with the groups in the comparison's order. */
function groupingOf(compare: CompareResult) {
  const groupOrder = compare.groups.map((g) => g.key);
  const groupAxis = { field: 'group', type: 'nominal' as const, title: compare.by, sort: groupOrder, axis: { labelAngle: 0 } };
  return { by: compare.by, groupOrder, groupAxis };
}
type Grouping = ReturnType<typeof groupingOf>;

/**
 * Vega-Lite specs for the report's charts. Data is always inline (`values`): nothing is
 * loaded, so rendering needs no network and the SVGs reference nothing outside themselves.
 */
export function chartSpecs(data: ReportData): { id: string; title: string; spec: TopLevelSpec }[] {
  const grouping = groupingOf(data.compare);
  const specs: (ChartSpec | null)[] = [
    metricByGroupChart(data, grouping),
    sizeByGroupChart(data.compare, grouping),
    energyByGroupChart(data.compare, grouping),
    trainingCurvesChart(data, grouping),
  ];
  return specs.filter((s): s is ChartSpec => s !== null);
}

/** The compared metric per group (mean ± std), each run a tick; accuracies in percent. */
function metricByGroupChart(data: ReportData, { by, groupAxis }: Grouping): ChartSpec {
  const { compare } = data;
  const accuracy = ACCURACY_METRICS.has(compare.metric);
  const scale = (x: number) => (accuracy ? x * 100 : x);
  const unit = accuracy ? ' (%)' : '';
  const groups = compare.groups
    .filter((g) => g.mean !== null)
    .map((g) => ({
      group: g.key,
      mean: scale(g.mean!),
      lo: scale(g.mean! - (g.std ?? 0)),
      hi: scale(g.mean! + (g.std ?? 0)),
      n: g.n,
    }));
  const points = data.runs.map((r) => ({ group: r.group, value: scale(r.value), run: r.id }));
  const lo = Math.min(...groups.map((g) => g.lo), ...points.map((p) => p.value));
  const hi = Math.max(...groups.map((g) => g.hi), ...points.map((p) => p.value));
  const pad = (hi - lo) * 0.15 || Math.abs(hi) * 0.01 || 1;
  const yScale = { domain: [lo - pad, hi + pad], zero: false, nice: false };
  return {
    id: 'metric-by-group',
    title: `${compare.metric} by ${by}: mean ± std over runs, each run a tick`,
    spec: {
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          data: { values: groups },
          mark: { type: 'point', filled: true, size: 90, color: '#1f77b4' },
          encoding: { x: groupAxis, y: { field: 'mean', type: 'quantitative', title: `${compare.metric}${unit}`, scale: yScale } },
        },
        {
          data: { values: groups },
          mark: { type: 'rule', color: '#1f77b4', strokeWidth: 2 },
          encoding: { x: groupAxis, y: { field: 'lo', type: 'quantitative', scale: yScale }, y2: { field: 'hi' } },
        },
        {
          data: { values: points },
          mark: { type: 'tick', color: '#ff7f0e', opacity: 0.7, thickness: 1 },
          encoding: { x: groupAxis, y: { field: 'value', type: 'quantitative', scale: yScale } },
        },
      ],
    },
  };
}

/** Model size per group; null when no group has a size. */
function sizeByGroupChart(compare: CompareResult, { by, groupAxis }: Grouping): ChartSpec | null {
  const sizes = compare.groups.filter((g) => g.sizeBytes !== null).map((g) => ({ group: g.key, kib: g.sizeBytes! / 1024 }));
  if (sizes.length === 0) return null;
  return {
    id: 'size-by-group',
    title: `Model size by ${by} (bit-packed where recorded, else fp32)`,
    spec: {
      width: WIDTH,
      height: HEIGHT,
      data: { values: sizes },
      mark: { type: 'bar', color: '#2ca02c' },
      encoding: { x: groupAxis, y: { field: 'kib', type: 'quantitative', title: 'size (KiB)' } },
    },
  };
}

/** Energy per training sample per group, coloured by source; null when no group has energy. */
function energyByGroupChart(compare: CompareResult, { by, groupAxis }: Grouping): ChartSpec | null {
  const energy = compare.groups
    .filter((g) => g.joulesPerSample !== null)
    .map((g) => ({ group: g.key, mj: g.joulesPerSample! * 1000, source: g.energySource! }));
  if (energy.length === 0) return null;
  const estimated = compare.groups.some((g) => g.energyEstimated);
  return {
    id: 'energy-by-group',
    title: `Energy per training sample by ${by}${estimated ? ' (estimate: CPU time × assumed watts per core)' : ''}`,
    spec: {
      width: WIDTH,
      height: HEIGHT,
      data: { values: energy },
      mark: { type: 'bar' },
      encoding: {
        x: groupAxis,
        y: { field: 'mj', type: 'quantitative', title: 'mJ per sample' },
        color: { field: 'source', type: 'nominal', title: 'energy source' },
      },
    },
  };
}

/** Test accuracy per epoch, one line per run; null when no run has a curve. */
function trainingCurvesChart(data: ReportData, { by, groupOrder }: Grouping): ChartSpec | null {
  if (data.curves.length === 0) return null;
  return {
    id: 'training-curves',
    title: `Test accuracy per epoch, one line per run${data.curveRunsCapped ? ` (first ${data.curveRuns} runs)` : ''}`,
    spec: {
      width: WIDTH + 120,
      height: HEIGHT + 40,
      data: { values: data.curves.map((p) => ({ ...p, testAcc: p.testAcc * 100 })) },
      mark: { type: 'line', point: data.curves.length <= 400, strokeWidth: 1.5, opacity: 0.8 },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
        y: { field: 'testAcc', type: 'quantitative', title: 'test accuracy (%)', scale: { zero: false } },
        color: { field: 'group', type: 'nominal', title: by, sort: groupOrder },
        detail: { field: 'runId', type: 'nominal' },
      },
    },
  };
}

/** Renders a Vega-Lite spec to SVG headlessly (renderer 'none': no canvas, no DOM, no network). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const full: TopLevelSpec = { ...spec, config: { font: 'sans-serif', background: 'white', ...spec.config } } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(full).spec), { renderer: 'none', loader: offlineLoader() });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A loader that refuses every load: charts carry their data inline, so nothing may be fetched. */
function offlineLoader(): vega.Loader {
  const refuse = (uri: string) => Promise.reject(new Error(`report charts load nothing; refused ${uri}`));
  return { ...vega.loader(), load: refuse, sanitize: refuse, http: refuse, file: refuse } as unknown as vega.Loader;
}

export async function renderCharts(data: ReportData): Promise<Chart[]> {
  const charts: Chart[] = [];
  for (const { id, title, spec } of chartSpecs(data)) charts.push({ id, title, svg: await renderSvg(spec) });
  return charts;
}
