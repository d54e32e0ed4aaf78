import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { migrationsFolder } from './db.js';
import * as schema from './schema.js';

test('store - checked-in migrations match schema.ts (run `npx drizzle-kit generate` if not)', async () => {
  const { generateSQLiteDrizzleJson, generateSQLiteMigration } = await import('drizzle-kit/api');
  const meta = join(migrationsFolder(), 'meta');
  const latest = readdirSync(meta)
    .filter((f) => f.endsWith('_snapshot.json'))
    .sort()
    .at(-1);
  assert.ok(latest, 'a snapshot exists');
  const snapshot = JSON.parse(readFileSync(join(meta, latest), 'utf8')) as Parameters<typeof generateSQLiteMigration>[0];
  const current = await generateSQLiteDrizzleJson(schema as unknown as Record<string, unknown>);
  assert.deepEqual(await generateSQLiteMigration(snapshot, current), []);
});
