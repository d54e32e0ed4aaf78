// CUDA kernels: every .cu compiles for sm_80, sm_90 and sm_90a, and the CUDA harness's CPU-side
// checks pass (native/tools/cuda/compile-check.sh; no GPU needed). Skipped, with the reason, where
// nvcc is absent. kernel-check.test.ts is its CPU counterpart.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from './addon.js';

const nvcc = process.env.NVCC ?? 'nvcc';
const hasNvcc = spawnSync(nvcc, ['--version'], { stdio: 'ignore' }).status === 0;

test('cuda - kernels compile for sm_80/sm_90/sm_90a and the harness CPU checks pass', {
  skip: hasNvcc ? false : `nvcc not found (${nvcc}): CUDA compile check not run`,
  timeout: 10 * 60_000,
}, () => {
  const script = path.join(packageRoot(), 'native', 'tools', 'cuda', 'compile-check.sh');
  const r = spawnSync('bash', [script, '--run-cpu-checks'], {
    encoding: 'utf8',
    env: { ...process.env, NVCC: nvcc, JOBS: process.env.JOBS ?? '2' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  assert.equal(r.status, 0, `compile-check.sh exited ${r.status ?? r.signal}:\n${out}`);
  const compiled = /compile-check: (\d+)\/(\d+) files compiled/.exec(out);
  assert.ok(compiled, `no compile summary in:\n${out}`);
  assert.equal(compiled[1], compiled[2]);
  assert.ok(Number(compiled[2]) >= 5, `expected the kernel sources and the harness, got ${compiled[2]} files`);
  assert.match(out, /sm_80, sm_90, sm_90a/);
  const cpu = /(\d+) passed, (\d+) failed/.exec(out);
  assert.ok(cpu, `no harness summary in:\n${out}`);
  assert.equal(cpu[2], '0', out);
  assert.ok(Number(cpu[1]) > 0);
});
