#!/usr/bin/env node
// Builds the native addon (native/binding.gyp) with node-gyp.
// A failed build never fails `npm install`: the engine falls back to the wasm/cpu
// backends and says why. `--strict` (npm run build:native) makes a failure fatal.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'native');
const statusFile = path.join(nativeDir, 'build', 'build-status.json');
const strict = process.argv.includes('--strict');

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) {
    return process.env.npm_config_node_gyp;
  }
  const require = createRequire(import.meta.url);
  for (const base of [root, `${path.dirname(process.execPath)}/../lib/node_modules/npm`]) {
    try {
      return require.resolve('node-gyp/bin/node-gyp.js', { paths: [base] });
    } catch {}
  }
  return null;
}

function record(ok, reason) {
  mkdirSync(path.dirname(statusFile), { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify({ ok, reason, at: new Date().toISOString() })}\n`);
}

if (process.env.BNN_SKIP_NATIVE === '1') {
  console.warn('bnn: native addon build skipped (BNN_SKIP_NATIVE=1)');
  record(false, 'build skipped by BNN_SKIP_NATIVE=1');
  process.exit(0);
}
if (!existsSync(path.join(nativeDir, 'binding.gyp'))) {
  console.warn('bnn: native/binding.gyp not found; skipping the native addon');
  process.exit(0);
}
const gyp = findNodeGyp();
if (!gyp) {
  const reason = 'node-gyp not found';
  console.warn(`bnn: native addon not built (${reason}); the engine will use the wasm or cpu backend`);
  record(false, reason);
  process.exit(strict ? 1 : 0);
}
const jobs = process.env.JOBS ?? 'max';
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--jobs=${jobs}`], { cwd: nativeDir, stdio: 'inherit' });
if (r.status !== 0) {
  const reason = `node-gyp rebuild exited with ${r.status ?? r.signal}`;
  console.warn(`bnn: native addon not built (${reason}); the engine will use the wasm or cpu backend`);
  record(false, reason);
  process.exit(strict ? 1 : 0);
}
record(true, null);

// Optional CUDA addon (native/cuda-addon/build.mjs), after the CPU addon: built only where nvcc
// is found; BNN_CUDA=0 skips it, BNN_CUDA=1 makes a failure fatal. Otherwise a failure is one
// warning line and never fails the install.
const cudaBuild = path.join(nativeDir, 'cuda-addon', 'build.mjs');
if (existsSync(cudaBuild)) {
  const force = ['1', 'on', 'true', 'yes', 'force'].includes((process.env.BNN_CUDA ?? '').trim().toLowerCase());
  let ok = false;
  try {
    ok = (await import(pathToFileURL(cudaBuild).href)).buildCudaAddon({ gyp }).ok;
  } catch (err) {
    console.warn(`bnn: warning: optional CUDA addon step failed (${String(err?.message ?? err).split('\n')[0]})`);
  }
  if (!ok && force) process.exit(1);
}
