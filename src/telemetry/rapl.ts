import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EnergyProbe, EnergyReading } from './types.js';

/** Where the kernel exposes RAPL, relative to the filesystem root. */
export const POWERCAP_DIR = 'sys/class/powercap';

export interface RaplOptions {
  /** Filesystem root holding `sys/class/powercap` (tests point it at a fake tree). */
  root?: string;
  /** Reads a small text file; tests inject failures (EACCES) that root cannot produce with chmod. */
  readText?: (path: string) => string;
}

/** One CPU package's energy counter. */
export interface RaplDomain {
  /** Directory name: `intel-rapl:0`, `amd-rapl:1`. */
  id: string;
  /** The domain's `name` file: `package-0`. */
  name: string;
  energyPath: string;
  /** The counter wraps to 0 after this many microjoules. */
  maxEnergyRangeUj: number;
}

export type RaplDiscovery = { available: true; domains: RaplDomain[] } | { available: false; reason: string };

// Top-level domains only: `intel-rapl:0` is a package, `intel-rapl:0:0` (core, uncore,
// dram) a part of it that the package already counts.
const PACKAGE_DIR = /^[a-z_-]*rapl:\d+$/;

const defaultReadText = (path: string): string => readFileSync(path, 'utf8');

/**
 * The CPU package domains under `<root>/sys/class/powercap`, each checked readable. Any
 * package unreadable makes RAPL unavailable (a partial sum would under-count), with why.
 */
export function findRaplPackages(options: RaplOptions = {}): RaplDiscovery {
  const base = join(options.root ?? '/', POWERCAP_DIR);
  const readText = options.readText ?? defaultReadText;
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return { available: false, reason: `no ${base} (no RAPL powercap driver)` };
  }
  const domains: RaplDomain[] = [];
  for (const id of entries.filter((e) => PACKAGE_DIR.test(e)).sort(byIndex)) {
    const dir = join(base, id);
    let name = id;
    try {
      name = readText(join(dir, 'name')).trim();
    } catch {
      // Older kernels may lack `name`; a top-level domain is still a package.
    }
    // `psys` is the whole platform (it overlaps the packages); only packages are summed.
    if (!name.startsWith('package')) continue;
    const energyPath = join(dir, 'energy_uj');
    try {
      const max = parseCounter(readText(join(dir, 'max_energy_range_uj')));
      parseCounter(readText(energyPath));
      domains.push({ id, name, energyPath, maxEnergyRangeUj: max });
    } catch (err) {
      return { available: false, reason: unreadableReason(dir, err) };
    }
  }
  if (domains.length === 0) return { available: false, reason: `no CPU package domains in ${base}` };
  return { available: true, domains };
}

/**
 * Microjoules between two readings of a counter that wraps to 0 after `maxUj`.
 * Correct for at most one wrap between readings: read more often than the wrap period.
 */
export function counterDeltaUj(previousUj: number, currentUj: number, maxUj: number): number {
  return currentUj >= previousUj ? currentUj - previousUj : maxUj - previousUj + currentUj;
}

/** Reads every package counter and keeps running joules across wraparounds. */
export class RaplProbe implements EnergyProbe {
  readonly source = 'rapl' as const;
  private last = new Map<string, number>();
  private joules = new Map<string, number>();
  private sinceMs = 0;
  private readonly readText: (path: string) => string;

  constructor(
    readonly domains: readonly RaplDomain[],
    options: Pick<RaplOptions, 'readText'> = {},
  ) {
    this.readText = options.readText ?? defaultReadText;
  }

  async reset(nowMs: number): Promise<void> {
    this.sinceMs = nowMs;
    for (const d of this.domains) {
      this.last.set(d.id, this.read(d));
      this.joules.set(d.id, 0);
    }
  }

  async poll(_nowMs: number): Promise<void> {
    this.pollSync();
  }

  /** `poll` without a promise, for callers inside a synchronous loop. */
  pollSync(): void {
    for (const d of this.domains) {
      const now = this.read(d);
      const delta = counterDeltaUj(this.last.get(d.id) ?? now, now, d.maxEnergyRangeUj);
      this.joules.set(d.id, (this.joules.get(d.id) ?? 0) + delta / 1e6);
      this.last.set(d.id, now);
    }
  }

  async take(nowMs: number): Promise<EnergyReading> {
    this.pollSync();
    const perPackage: Record<string, number> = {};
    let joules = 0;
    for (const d of this.domains) {
      const j = this.joules.get(d.id) ?? 0;
      perPackage[d.name] = j;
      joules += j;
      this.joules.set(d.id, 0);
    }
    const intervalS = Math.max(0, (nowMs - this.sinceMs) / 1000);
    this.sinceMs = nowMs;
    return { source: 'rapl', joules, watts: intervalS > 0 ? joules / intervalS : null, intervalS, detail: { packages: perPackage } };
  }

  private read(d: RaplDomain): number {
    return parseCounter(this.readText(d.energyPath));
  }
}

function parseCounter(text: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new Error(`not a counter: "${t.slice(0, 40)}"`);
  return Number(t);
}

function unreadableReason(dir: string, err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'EACCES' || code === 'EPERM') {
    return `permission denied reading ${dir}/energy_uj (root-only since Linux 5.10; grant read access to use RAPL)`;
  }
  return `cannot read ${dir}: ${(err as Error).message}`;
}

function byIndex(a: string, b: string): number {
  return Number(a.split(':').at(-1)) - Number(b.split(':').at(-1)) || a.localeCompare(b);
}
