export { chartSpecs, renderCharts, renderSvg, type Chart } from './charts.js';
export { gatherReport, MAX_CURVE_RUNS, type CurvePoint, type ReportData, type ReportRun } from './data.js';
export { ReportError } from './errors.js';
export { renderHtml } from './html.js';
export { renderMarkdown } from './markdown.js';
export { comparisonTable, runsTable } from './tables.js';
export { checkWritable, parseOutPath, REPORT_FORMATS, writeReport, type ReportFormat, type ReportTarget } from './write.js';
