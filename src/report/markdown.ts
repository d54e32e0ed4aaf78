import type { Chart } from './charts.js';
import type { ReportData } from './data.js';
import { comparisonTable, runsTable, type Table } from './tables.js';

/**
 * GitHub-flavoured Markdown. Charts are SVG files in a folder beside the report
 * (`report.md` → `report-charts/<id>.svg`), linked by relative path, so the pair renders
 * offline in any Markdown viewer and on a code host alike.
 */
export function renderMarkdown(data: ReportData, charts: readonly Chart[], chartsDirName: string): string {
  const comparison = comparisonTable(data);
  const lines = [
    `# bnn report: ${data.compare.metric} by ${data.compare.by}`,
    '',
    `${data.runs.length} COMPLETED runs from \`${data.storePath}\`, generated ${data.generatedAt}. Baseline: **${data.compare.baseline ?? '-'}**.`,
    '',
    '## Comparison',
    '',
    tableMd(comparison),
    '',
    ...comparison.notes.flatMap((n) => [n, '']),
    '## Charts',
    '',
    ...charts.flatMap((c) => [`### ${c.title}`, '', `![${c.title}](${encodeURI(`${chartsDirName}/${c.id}.svg`)})`, '']),
    '## Runs',
    '',
    tableMd(runsTable(data)),
    '',
  ];
  return lines.join('\n');
}

function tableMd(table: Table): string {
  const cell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|');
  const head = `| ${table.columns.map((c) => cell(c.header)).join(' | ')} |`;
  const rule = `| ${table.columns.map((c) => (c.align === 'right' ? '---:' : '---')).join(' | ')} |`;
  return [head, rule, ...table.rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}
