import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Chart } from './charts.js';
import { ReportError } from './errors.js';

export const REPORT_FORMATS = { '.html': 'html', '.htm': 'html', '.md': 'md' } as const;
export type ReportFormat = (typeof REPORT_FORMATS)[keyof typeof REPORT_FORMATS];

export interface ReportTarget {
  /** Absolute path of the report file. */
  file: string;
  format: ReportFormat;
  /** For Markdown: the folder of chart SVGs beside it (`report.md` → `report-charts`). */
  chartsDir?: string;
}

/** The `--out` path's format from its extension; undefined for any other. No I/O. */
export function parseOutPath(value: string): ReportTarget | undefined {
  const file = resolve(value);
  const ext = extname(file).toLowerCase();
  const format = (REPORT_FORMATS as Record<string, ReportFormat>)[ext];
  if (value.trim() === '' || format === undefined) return undefined;
  return format === 'md' ? { file, format, chartsDir: join(dirname(file), `${basename(file, extname(file))}-charts`) } : { file, format };
}

/**
 * Checks, before any work, that the report can be written: its folder exists and is
 * writable, and neither it nor the charts folder is in the way. ReportError (exit 1) naming the path.
 */
export function checkWritable(target: ReportTarget): void {
  const dir = dirname(target.file);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ReportError(`${target.file}: cannot write the report: folder ${dir} does not exist (create it first)`, { file: target.file });
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new ReportError(`${target.file}: cannot write the report: folder ${dir} is not writable`, { file: target.file, cause: err });
  }
  if (existsSync(target.file) && statSync(target.file).isDirectory()) {
    throw new ReportError(`${target.file}: cannot write the report: a folder of that name is in the way`, { file: target.file });
  }
  if (target.chartsDir !== undefined && existsSync(target.chartsDir) && !statSync(target.chartsDir).isDirectory()) {
    throw new ReportError(`${target.chartsDir}: cannot write the report's charts: a file of that name is in the way`, {
      file: target.chartsDir,
    });
  }
}

/**
 * Writes the report atomically: everything goes to temporary names in the same folder
 * first, then is renamed into place, so a reader sees the old report or the new one and a
 * failure leaves nothing behind. Markdown replaces its charts folder as a whole.
 * Returns the paths written.
 */
export function writeReport(target: ReportTarget, content: string, charts: readonly Chart[]): string[] {
  const dir = dirname(target.file);
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmpFile = join(dir, `.${basename(target.file)}.tmp-${tag}`);
  const tmpCharts = target.chartsDir === undefined ? undefined : join(dir, `.${basename(target.chartsDir)}.tmp-${tag}`);
  const oldCharts = target.chartsDir === undefined ? undefined : join(dir, `.${basename(target.chartsDir)}.old-${tag}`);
  const written: string[] = [];
  try {
    if (tmpCharts !== undefined) {
      mkdirSync(tmpCharts);
      for (const c of charts) writeFileSync(join(tmpCharts, `${c.id}.svg`), c.svg);
    }
    writeFileSync(tmpFile, content);
    if (tmpCharts !== undefined && target.chartsDir !== undefined) {
      if (existsSync(target.chartsDir)) renameSync(target.chartsDir, oldCharts!);
      renameSync(tmpCharts, target.chartsDir);
      written.push(...charts.map((c) => join(target.chartsDir!, `${c.id}.svg`)));
    }
    renameSync(tmpFile, target.file);
    written.unshift(target.file);
  } catch (err) {
    rmSync(tmpFile, { force: true });
    if (tmpCharts !== undefined) rmSync(tmpCharts, { recursive: true, force: true });
    throw new ReportError(`${target.file}: cannot write the report: ${(err as Error).message}`, { file: target.file, cause: err });
  } finally {
    if (oldCharts !== undefined) rmSync(oldCharts, { recursive: true, force: true });
  }
  return written;
}
