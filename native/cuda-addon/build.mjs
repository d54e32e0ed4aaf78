#!/usr/bin/env node
// Builds the optional CUDA addon native/cuda-addon/build/Release/bnn_cuda.node:
//   1. make -C native/tools/cuda lib  (kernels -> libbnn_cuda.a in native/tools/cuda/build/addon, -fPIC,
//      sm_80 + sm_90 machine code and sm_90 PTX; incremental, so a rebuild only relinks)
//   2. node-gyp rebuild in native/cuda-addon (N-API glue, static CUDA runtime)
// BNN_CUDA: unset/auto = build when nvcc is found, a failure is one warning line;
//           0 = skip (and remove a stale addon); 1 = nvcc required and a failure is fatal.
// Output goes to native/cuda-addon/build/build.log; the outcome to build/build-status.json,
// which src/native/cuda.ts reads to say why the addon is missing.
// Used by scripts/build-native.mjs after the CPU addon; runnable alone: node native/cuda-addon/build.mjs
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nativeDir = path.resolve(here, '..');
const buildDir = path.join(here, 'build');
const addonFile = path.join(buildDir, 'Release', 'bnn_cuda.node');
const statusFile = path.join(buildDir, 'build-status.json');
const logFile = path.join(buildDir, 'build.log');

/** BNN_CUDA as a mode: 'off' (0), 'force' (1), else 'auto'. */
export function cudaBuildMode(env = process.env) {
  const v = (env.BNN_CUDA ?? '').trim().toLowerCase();
  if (['0', 'off', 'false', 'no'].includes(v)) return 'off';
  if (['1', 'on', 'true', 'yes', 'force'].includes(v)) return 'force';
  return 'auto';
}

function record(status) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify({ ...status, at: new Date().toISOString() })}\n`);
}

function run(label, cmd, args, opts, log) {
  log.push(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  log.push(`${r.stdout ?? ''}${r.stderr ?? ''}`.trimEnd());
  if (r.error) return `${label} could not run: ${r.error.message}`;
  return r.status === 0 ? null : `${label} exited with ${r.status ?? r.signal}`;
}

/**
 * Builds the addon. Returns { ok, skipped, reason, seconds }; never throws. `gyp` is the
 * node-gyp.js path scripts/build-native.mjs found. Prints at most one line (plus the log
 * tail when BNN_CUDA=1 makes a failure fatal).
 */
export function buildCudaAddon({ gyp, env = process.env } = {}) {
  const mode = cudaBuildMode(env);
  const t0 = Date.now();
  const nvcc = env.NVCC || 'nvcc';
  const finish = (ok, skipped, reason, noNvcc = false) => {
    if (!ok) rmSync(addonFile, { force: true }); // never leave a stale addon behind
    record({ ok, skipped, noNvcc, reason, mode });
    return { ok, skipped, reason, seconds: (Date.now() - t0) / 1000 };
  };
  if (mode === 'off') {
    console.warn('bnn: CUDA addon skipped (BNN_CUDA=0)');
    return finish(false, true, 'skipped by BNN_CUDA=0');
  }
  const probe = spawnSync(nvcc, ['--version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    const reason = `nvcc not found (${nvcc})`;
    if (mode === 'force') console.error(`bnn: CUDA addon not built: ${reason} (BNN_CUDA=1)`);
    // auto without nvcc is the normal CPU-host case: stay quiet.
    return finish(false, true, reason, true);
  }
  const log = [];
  const jobs = /^\d+$/.test(env.JOBS ?? '') ? env.JOBS : String(Math.min(2, os.availableParallelism()));
  let reason = gyp ? null : 'node-gyp not found';
  if (!reason)
    reason = run(
      'make -C native/tools/cuda lib',
      'make',
      [
        '-C',
        path.join(nativeDir, 'tools', 'cuda'),
        'lib',
        'BUILD=build/addon',
        'NVCCFLAGS=-std=c++17 -O3 -Xcompiler -fPIC,-Wall,-Wextra',
        `NVCC=${nvcc}`,
        `-j${jobs}`,
      ],
      { env },
      log,
    );
  if (!reason) {
    // Outside npm (no npm_config_nodedir) use the running node's own headers when it has them,
    // instead of node-gyp downloading them.
    const prefix = path.resolve(path.dirname(process.execPath), '..');
    const nodedir =
      !env.npm_config_nodedir && existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
    reason = run('node-gyp rebuild', process.execPath, [gyp, 'rebuild', `--jobs=${jobs}`, ...nodedir], { cwd: here, env }, log);
  }
  if (!reason && !existsSync(addonFile)) reason = 'node-gyp succeeded but bnn_cuda.node is missing';
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(logFile, `${log.join('\n')}\n`);
  const rel = path.relative(process.cwd(), logFile) || logFile;
  if (reason) {
    const result = finish(false, false, reason);
    if (mode === 'force') {
      console.error(log.join('\n').split('\n').slice(-60).join('\n'));
      console.error(`bnn: CUDA addon build failed (${reason}; BNN_CUDA=1 makes this fatal; log: ${rel})`);
    } else {
      console.warn(`bnn: warning: optional CUDA addon not built (${reason}; log: ${rel}); GPU kernels disabled, CPU addon unaffected`);
    }
    return result;
  }
  const result = finish(true, false, null);
  console.log(`bnn: CUDA addon built (${path.relative(process.cwd(), addonFile) || addonFile}, ${result.seconds.toFixed(1)} s)`);
  return result;
}

// Standalone: node native/cuda-addon/build.mjs (finds node-gyp like scripts/build-native.mjs).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  let gyp = process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp) ? process.env.npm_config_node_gyp : null;
  for (const base of [path.resolve(nativeDir, '..'), `${path.dirname(process.execPath)}/../lib/node_modules/npm`]) {
    if (gyp) break;
    try {
      gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [base] });
    } catch {}
  }
  const r = buildCudaAddon({ gyp });
  process.exit(!r.ok && cudaBuildMode() === 'force' ? 1 : 0);
}
