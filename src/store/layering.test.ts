import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// The store sits below everything that uses it: it imports nothing of telemetry (not even
// types), and it alone talks to drizzle-orm: every query lives in a store module that receives
// `db`. Tests under test/ may use drizzle where they must (legacy-schema fixtures).

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const STORE = join(root, 'src', 'store');
const TELEMETRY = join(root, 'src', 'telemetry');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every module a source names: static and type-only imports, re-exports, dynamic `import()`. */
function importSpecifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

const isDrizzle = (spec: string) => spec === 'drizzle-orm' || spec.startsWith('drizzle-orm/');
const inside = (dir: string, path: string) => path === dir || path.startsWith(dir + sep);

/** `file: specifier` for each import of `file` that `bad` refuses. */
function violations(files: readonly string[], bad: (spec: string, file: string) => boolean): string[] {
  return files.flatMap((file) =>
    importSpecifiers(readFileSync(file, 'utf8'))
      .filter((spec) => bad(spec, file))
      .map((spec) => `${relative(root, file)}: ${spec}`),
  );
}

const importsTelemetry = (spec: string, file: string) => spec.startsWith('.') && inside(TELEMETRY, resolve(dirname(file), spec));

test('store layering - the scanner sees static, type-only, re-exported and dynamic imports, and no strings', () => {
  const source = [
    "import { sql } from 'drizzle-orm';",
    "import type { HardwareInfo } from '../telemetry/types.js';",
    "export { x } from 'drizzle-orm/sqlite-core';",
    "const m = await import('../telemetry/host.js');",
    "const name = 'drizzle-orm';",
  ].join('\n');
  assert.deepEqual(importSpecifiers(source), ['drizzle-orm', '../telemetry/types.js', 'drizzle-orm/sqlite-core', '../telemetry/host.js']);
  const storeFile = join(STORE, 'x.ts');
  assert.equal(importsTelemetry('../telemetry/types.js', storeFile), true);
  assert.equal(importsTelemetry('./telemetry.js', storeFile), false, 'a store module named like telemetry is not telemetry');
});

test('store layering - no module under src/store imports src/telemetry, not even its types', () => {
  const files = tsFiles(STORE);
  assert.ok(files.some((f) => f.endsWith(`${sep}schema.ts`)), 'the store was scanned');
  assert.deepEqual(violations(files, importsTelemetry), []);
});

test('store layering - drizzle-orm is imported only under src/store', () => {
  const store = tsFiles(STORE);
  assert.ok(violations(store, isDrizzle).length > 0, 'the store itself uses drizzle-orm (the scan finds it)');
  const outside = ['src', 'worker', 'coordinator'].flatMap((d) => tsFiles(join(root, d))).filter((f) => !inside(STORE, f));
  assert.ok(outside.length > 100, `${outside.length} files outside the store scanned`);
  assert.deepEqual(violations(outside, isDrizzle), []);
});
