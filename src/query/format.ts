/** Plain-text rendering shared by the query commands: aligned tables, CSV, percentages, sparklines. */

export interface Column {
  header: string;
  /** Numbers read best right-aligned. Default left. */
  align?: 'left' | 'right';
}

/**
 * Columns separated by two spaces, padded to the widest cell (by code points, so `±` and
 * sparkline blocks count as one); trailing blanks trimmed. Ends with a newline.
 */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(width(c.header), ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    columns
      .map((c, i) => pad(cells[i] ?? '', widths[i]!, c.align ?? 'left'))
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.header)), ...rows.map(line)].join('\n')}\n`;
}

function width(s: string): number {
  return [...s].length;
}

function pad(s: string, w: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, w - width(s)));
  return align === 'right' ? fill + s : s + fill;
}

/** RFC 4180 CSV with a header row; null and undefined become empty fields. Ends with CRLF-free newlines. */
export function toCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return `${[header, ...rows].map((r) => r.map(csvField).join(',')).join('\n')}\n`;
}

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) || s !== s.trim() ? `"${s.replaceAll('"', '""')}"` : s;
}

/** A fraction as a percentage: 0.8912 → `89.12%`; null → `-`. */
export function pct(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined ? '-' : `${(x * 100).toFixed(digits)}%`;
}

/** A number with fixed decimals; null → `-`. */
export function fixed(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined ? '-' : x.toFixed(digits);
}

/** A p-value: four significant digits, scientific below 1e-4; null → `-`. */
export function pValue(p: number | null | undefined): string {
  if (p === null || p === undefined) return '-';
  return p < 1e-4 ? p.toExponential(2) : p.toPrecision(4);
}

/** Bytes in B, KiB, MiB or GiB; null → `-`. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Seconds as `12.3s`, `4m05s` or `1h02m`; null → `-`. */
export function duration(s: number | null | undefined): string {
  if (s === null || s === undefined) return '-';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** An integer with thousands separators (`6,120`); null → `-`. */
export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : Math.round(n).toLocaleString('en-US');
}

export const SPARK_LEVELS = '▁▂▃▄▅▆▇█';

/**
 * One block per value scaled between the smallest (▁) and largest (█); a missing value is a
 * space; all values equal draw a flat middle line (▄).
 */
export function sparkline(values: readonly (number | null)[]): string {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (present.length === 0) return ' '.repeat(values.length);
  const lo = Math.min(...present);
  const hi = Math.max(...present);
  const levels = [...SPARK_LEVELS];
  return values
    .map((v) => {
      if (v === null || !Number.isFinite(v)) return ' ';
      if (hi === lo) return levels[3]!;
      return levels[Math.min(levels.length - 1, Math.round(((v - lo) / (hi - lo)) * (levels.length - 1)))]!;
    })
    .join('');
}

/** Joules per sample with 3 significant digits in J or mJ, and the energy source: `1.23 mJ (rapl)`, `0.456 J (estimate)`. */
export function joulesPerSample(x: number | null, source: string | null): string {
  if (x === null) return '-';
  const value = x !== 0 && Math.abs(x) < 1 ? `${(x * 1000).toPrecision(3)} mJ` : `${x.toPrecision(3)} J`;
  return source === null ? value : `${value} (${source})`;
}
