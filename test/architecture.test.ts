// The module map of docs/architecture.md, enforced: each area imports only the areas its row
// allows (the table is read from the document, so the two cannot drift), no file or area
// import cycle, a worker never reaches the store, and the packages that belong to one
// adapter stay in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { areaOf, fileCycles, importChain, importGraph, importSpecifiers, REPO } from './helpers/import-graph.js';

/** `area → areas it may import`, from the "Module map" table of docs/architecture.md. */
function allowedArrows(): Map<string, Set<string>> {
  const doc = readFileSync(join(REPO, 'docs', 'architecture.md'), 'utf8');
  const section = doc.split('\n## Module map')[1]?.split('\n## ')[0];
  assert.ok(section, 'docs/architecture.md has a "Module map" section');
  const rows = section.split('\n').filter((l) => /^\| `[^`]+` \|/.test(l));
  const allowed = new Map<string, Set<string>>();
  for (const row of rows) {
    const [area, imports] = row
      .split('|')
      .slice(1, 3)
      .map((c) => c.trim());
    const names = (s: string) => [...s.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\/$/, ''));
    allowed.set(names(area!)[0]!, new Set(names(imports!)));
  }
  return allowed;
}

const graph = importGraph();

test('architecture - the scanner sees static, type-only, re-exported and dynamic imports, and no strings', () => {
  const source = [
    "import { sql } from 'drizzle-orm';",
    "import type { HardwareInfo } from '../telemetry/types.js';",
    "export { x } from 'drizzle-orm/sqlite-core';",
    "const m = await import('../telemetry/host.js');",
    "const name = 'drizzle-orm';",
  ].join('\n');
  assert.deepEqual(importSpecifiers(source), ['drizzle-orm', '../telemetry/types.js', 'drizzle-orm/sqlite-core', '../telemetry/host.js']);
  assert.ok(graph.files.size > 150, `${graph.files.size} files scanned`);
});

test('architecture - every area imports only what the module map allows', () => {
  const allowed = allowedArrows();
  const areas = new Set([...graph.files.keys()].map(areaOf));
  assert.deepEqual(
    [...areas].filter((a) => !allowed.has(a)),
    [],
    'every area has a row in the module map',
  );
  const bad: string[] = [];
  for (const [file, deps] of graph.files) {
    const from = areaOf(file);
    for (const dep of deps) {
      const to = areaOf(dep);
      if (to !== from && !allowed.get(from)?.has(to)) bad.push(`${file} -> ${dep} (${from} may not import ${to})`);
    }
  }
  assert.deepEqual(bad, []);
});

test('architecture - no import cycle between files, nor between areas', () => {
  assert.deepEqual(fileCycles(graph), []);
  const areaGraph = { files: new Map<string, string[]>(), packages: new Map() };
  for (const [file, deps] of graph.files) {
    const from = areaOf(file);
    const list = areaGraph.files.get(from) ?? [];
    for (const d of deps) if (areaOf(d) !== from && !list.includes(areaOf(d))) list.push(areaOf(d));
    areaGraph.files.set(from, list);
  }
  assert.deepEqual(fileCycles(areaGraph), []);
});

test('architecture - no file under worker/ reaches src/store through any import chain', () => {
  const chains = [...graph.files.keys()]
    .filter((f) => areaOf(f) === 'worker')
    .map((f) => importChain(graph, f, (x) => areaOf(x) === 'src/store'))
    .filter((c): c is string[] => c !== null)
    .map((c) => c.join(' -> '));
  assert.deepEqual(chains, []);
});

test('architecture - adapters own their packages: tfjs never in src/collective, nats (the all-reduce transport and the checkpoint object store) / grpc / drizzle each in their one place', () => {
  const importers = (pkg: (p: string) => boolean) =>
    [...graph.packages]
      .filter(([, pkgs]) => pkgs.some(pkg))
      .map(([file]) => file)
      .sort();
  assert.deepEqual(
    importers((p) => p.startsWith('@tensorflow/')).filter((f) => areaOf(f) === 'src/collective'),
    [],
  );
  assert.deepEqual(
    importers((p) => p === 'nats' || p.startsWith('nats/')),
    ['src/collective/nats-object-store.ts', 'src/collective/nats-transport.ts'],
  );
  assert.deepEqual(
    importers((p) => p.startsWith('@grpc/')),
    ['src/rpc/grpc.ts'],
  );
  assert.deepEqual(
    importers((p) => p === 'drizzle-orm' || p.startsWith('drizzle-orm/')).filter((f) => areaOf(f) !== 'src/store'),
    [],
  );
});
