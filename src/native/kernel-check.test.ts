import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from './addon.js';

test('kernel_check - the standalone C++ checker builds and passes every kernel variant against the references', () => {
  const dir = path.join(packageRoot(), 'native', 'tools', 'cpu');
  const r = spawnSync('make', ['-C', dir, '-j2', 'check'], { encoding: 'utf8', timeout: 600_000 });
  assert.ifError(r.error);
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `make -C native/tools/cpu check exited with ${r.status}:\n${out.slice(-4000)}`);
  const summary = /kernel_check: (\d+) passed, (\d+) failed/.exec(out);
  assert.ok(summary, `no summary line in:\n${out.slice(-2000)}`);
  assert.equal(Number(summary[2]), 0);
  assert.ok(Number(summary[1]) > 1000, `only ${summary[1]} checks ran`);
});
