// The import graph of the code base (src/, worker/, coordinator/; tests excluded): every module a
// file names (static, type-only, re-exports and dynamic `import()`), resolved to files or
// packages, grouped into areas (`src/<dir>`, `worker`, `coordinator`).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

export const REPO = resolve(dirname(new URL(import.meta.url).pathname), '../..');

export interface ImportGraph {
  /** Repo-relative file → repo-relative files it imports. */
  files: Map<string, string[]>;
  /** Repo-relative file → packages it imports (`nats`, `@tensorflow/tfjs-core`, `node:fs`...). */
  packages: Map<string, string[]>;
}

/** The TypeScript sources under `dir` (no tests, declarations, node_modules or dashboard assets). */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return ['node_modules', 'dashboard'].includes(e.name) ? [] : sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Every module a source names: static and type-only imports, re-exports, dynamic `import()` (never plain strings). */
export function importSpecifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

function resolveLocal(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')]) {
    if (candidate.endsWith('.ts') && existsSync(candidate)) return candidate;
  }
  return null;
}

export function importGraph(roots: readonly string[] = ['src', 'worker', 'coordinator']): ImportGraph {
  const files = new Map<string, string[]>();
  const packages = new Map<string, string[]>();
  for (const file of roots.flatMap((r) => sourceFiles(join(REPO, r)))) {
    const rel = relative(REPO, file);
    const local: string[] = [];
    const pkgs: string[] = [];
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) {
        pkgs.push(spec);
        continue;
      }
      const target = resolveLocal(file, spec);
      if (target) local.push(relative(REPO, target));
      else if (!spec.endsWith('.json')) throw new Error(`${rel}: cannot resolve '${spec}'`);
    }
    files.set(rel, local);
    packages.set(rel, pkgs);
  }
  return { files, packages };
}

/** `src/train/loop.ts` → `src/train`; `worker/main.ts` → `worker`. */
export function areaOf(file: string): string {
  const parts = file.split(sep);
  return parts[0] === 'src' ? `src/${parts[1]!.replace(/\.ts$/, '')}` : parts[0]!;
}

/** The import cycles between files (strongly connected components of more than one file). */
export function fileCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.files.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) cycles.push(component.sort());
  };
  for (const v of graph.files.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** A shortest import chain from `from` to a file `target` accepts, or null. */
export function importChain(graph: ImportGraph, from: string, target: (file: string) => boolean): string[] | null {
  const parent = new Map<string, string | null>([[from, null]]);
  const queue = [from];
  while (queue.length > 0) {
    const v = queue.shift()!;
    if (target(v) && v !== from) {
      const chain: string[] = [];
      for (let x: string | null = v; x !== null; x = parent.get(x) ?? null) chain.unshift(x);
      return chain;
    }
    for (const w of graph.files.get(v) ?? []) {
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return null;
}
