import type { Chart } from './charts.js';
import type { ReportData } from './data.js';
import { comparisonTable, runsTable, type Table } from './tables.js';

/**
 * A self-contained HTML page: inline CSS and inline SVG charts, no scripts, fonts or
 * anything else fetched, so it opens offline in any browser.
 */
export function renderHtml(data: ReportData, charts: readonly Chart[]): string {
  const comparison = comparisonTable(data);
  const title = `bnn report: ${data.compare.metric} by ${data.compare.by}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; white-space: nowrap; }
th { text-align: left; background: #f4f4f4; }
td.r, th.r { text-align: right; }
figure { margin: 1.5rem 0; }
figcaption { font-weight: 600; margin-bottom: 0.4rem; }
.meta, .note { color: #555; font-size: 0.9rem; }
code { font-size: 0.9em; }
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="meta">${data.runs.length} COMPLETED runs from <code>${esc(data.storePath)}</code>, generated ${esc(data.generatedAt)}. Baseline: <b>${esc(data.compare.baseline ?? '-')}</b>.</p>
<h2>Comparison</h2>
${tableHtml(comparison)}
${comparison.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('\n')}
<h2>Charts</h2>
${charts.map((c) => `<figure id="${esc(c.id)}">\n<figcaption>${esc(c.title)}</figcaption>\n${c.svg}\n</figure>`).join('\n')}
<h2>Runs</h2>
${tableHtml(runsTable(data))}
</body>
</html>
`;
}

function tableHtml(table: Table): string {
  const cls = (i: number) => (table.columns[i]?.align === 'right' ? ' class="r"' : '');
  const head = table.columns.map((c, i) => `<th${cls(i)}>${esc(c.header)}</th>`).join('');
  const body = table.rows.map((r) => `<tr>${r.map((cell, i) => `<td${cls(i)}>${esc(cell)}</td>`).join('')}</tr>`).join('\n');
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
