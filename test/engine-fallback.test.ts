// The native addon missing never breaks training: `auto` falls back with one warning line
// naming the reason; asking for `native` by name is a clear error instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { runCli } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';

const CONFIG = `name: fallback
dataset:
  name: synthetic
  synthetic: { trainSize: 256, testSize: 64, shape: [6, 6, 1], numClasses: 3 }
model:
  hidden: [16, 16]
train:
  epochs: 1
  batchSize: 64
`;

test('engine fallback - auto without the native addon warns once, names the reason and still trains', async (t) => {
  const dir = await tmpDir({ t });
  await writeFile(dir.join('c.yaml'), CONFIG);
  const r = await runCli(['train', dir.join('c.yaml'), '--store', dir.join('bnn.db'), '--checkpoint-dir', dir.join('ck'), '--json'], {
    env: { BNN_NATIVE_ADDON: dir.join('missing.node') },
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('warning'));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(warnings[0], /native backend unavailable .*missing\.node/);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.ok(['wasm', 'cpu'].includes(summary.backend), summary.backend);
});

test('engine fallback - --backend native without the addon is an error naming the reason, exit 1', async (t) => {
  const dir = await tmpDir({ t });
  await writeFile(dir.join('c.yaml'), CONFIG);
  const r = await runCli(['train', dir.join('c.yaml'), '--backend', 'native', '--store', dir.join('bnn.db')], {
    env: { BNN_NATIVE_ADDON: dir.join('missing.node') },
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /backend 'native' is unavailable: .*missing\.node/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for a user-facing error');
});
