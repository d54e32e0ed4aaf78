// The optional CUDA addon (native/cuda-addon): built and loadable wherever nvcc exists, harmless
// without a GPU (info() says why, compute calls throw BNN_CUDA_UNAVAILABLE instead of crashing),
// never touched by the engine under BNN_CUDA=0. With a GPU, results match the CPU addon bit for bit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot, packedInt32Length } from './addon.js';
import { cudaAddonPath, cudaDisabled, cudaNotBuiltReason, loadCuda, type CudaAddon } from './cuda.js';
import { convGeometry, filterSize, inputSize, randomFloats, requireAddon } from './testing.js';

const root = packageRoot();
const nvcc = process.env.NVCC ?? 'nvcc';
const hasNvcc = spawnSync(nvcc, ['--version'], { stdio: 'ignore' }).status === 0;

function buildStatus(): { ok?: boolean; skipped?: boolean; reason?: string | null } | null {
  try {
    return JSON.parse(readFileSync(path.join(root, 'native/cuda-addon/build/build-status.json'), 'utf8'));
  } catch {
    return null;
  }
}

/** Why the built-addon tests cannot run here, or false. */
function noAddonSkip(): string | false {
  if (!hasNvcc) return `nvcc not found (${nvcc}): the CUDA addon is not built on this host`;
  if (cudaDisabled()) return 'BNN_CUDA=0';
  const status = buildStatus();
  if (status?.skipped && !existsSync(cudaAddonPath())) return `CUDA addon build skipped: ${status.reason}`;
  return false;
}

function requireCuda(): CudaAddon {
  const { cuda, reason } = loadCuda();
  assert.ok(cuda, `bnn_cuda.node required where nvcc exists (npm run build:native builds it): ${reason}`);
  return cuda;
}

const gpuPresent = (() => {
  if (noAddonSkip()) return false;
  const { cuda } = loadCuda();
  try {
    return cuda?.info().available === true;
  } catch {
    return false;
  }
})();

test('cudaNotBuiltReason - names the missing nvcc, a skip or a failed build', () => {
  assert.equal(cudaNotBuiltReason(null), 'bnn_cuda.node not built (no nvcc at install)');
  assert.equal(
    cudaNotBuiltReason({ ok: false, skipped: true, noNvcc: true, reason: 'nvcc not found (nvcc)' }),
    'bnn_cuda.node not built (no nvcc at install)',
  );
  assert.equal(
    cudaNotBuiltReason({ ok: false, skipped: true, reason: 'skipped by BNN_CUDA=0' }),
    'bnn_cuda.node not built (skipped by BNN_CUDA=0)',
  );
  assert.match(
    cudaNotBuiltReason({ ok: false, reason: 'node-gyp rebuild exited with 1' }),
    /build failed: node-gyp rebuild exited with 1; see native\/cuda-addon\/build\/build\.log/,
  );
});

test('loadCuda - never throws: a missing file or a broken addon gives a reason', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bnn-cuda-'));
  try {
    const trap = path.join(dir, 'trap.cjs');
    writeFileSync(trap, "throw new Error('trap addon')\n");
    const script = `import { loadCuda } from ${JSON.stringify(path.join(root, 'src/native/cuda.ts'))};
      const r = loadCuda(); console.log(JSON.stringify({ cuda: r.cuda !== null, reason: r.reason }));`;
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, ...env },
      });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { cuda: boolean; reason: string };
    };
    assert.deepEqual(run({ BNN_CUDA_ADDON: path.join(dir, 'absent.node') }), {
      cuda: false,
      reason: `bnn_cuda.node not found at ${path.join(dir, 'absent.node')} (BNN_CUDA_ADDON)`,
    });
    assert.deepEqual(run({ BNN_CUDA_ADDON: trap }), { cuda: false, reason: 'bnn_cuda.node failed to load: trap addon' });
    assert.deepEqual(run({ BNN_CUDA_ADDON: trap, BNN_CUDA: '0' }), { cuda: false, reason: 'disabled by BNN_CUDA=0' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cuda addon - built where nvcc exists, loads, runtime linked statically', { skip: noAddonSkip() }, () => {
  const file = cudaAddonPath();
  assert.ok(
    existsSync(file),
    `${file} missing although nvcc exists (${JSON.stringify(buildStatus())}); ` +
      'run npm run build:native (BNN_CUDA=1 makes a CUDA build failure fatal and prints the log)',
  );
  const cuda = requireCuda();
  assert.equal(loadCuda().reason, '');
  for (const name of ['info', 'xnorGemmPacked', 'binaryConv2d', 'packWeights', 'xnorDenseCached', 'dropWeights']) {
    assert.equal(typeof (cuda as unknown as Record<string, unknown>)[name], 'function', name);
  }
  const ldd = spawnSync('ldd', [file], { encoding: 'utf8' });
  if (ldd.status === 0) assert.doesNotMatch(ldd.stdout, /libcudart/, `libcudart must be linked statically:\n${ldd.stdout}`);
});

test('cuda addon - info() without a GPU says why; compute calls throw a clear error, no crash', {
  skip: noAddonSkip() || (gpuPresent ? 'a usable GPU is present' : false),
}, () => {
  const cuda = requireCuda();
  const info = cuda.info();
  assert.equal(info.available, false);
  assert.equal(typeof info.reason, 'string');
  assert.match(info.reason!, /CUDA driver not found|no CUDA device|no usable CUDA device/);
  assert.equal(info.device, null);
  assert.equal(info.gemmVariant, null);
  assert.ok(Array.isArray(info.devices));
  assert.deepEqual(cuda.info(), info, 'the probe runs once');

  const unavailable = (fn: () => void, name: string) =>
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof Error && !(err instanceof TypeError), String(err));
      assert.equal((err as Error & { code?: string }).code, 'BNN_CUDA_UNAVAILABLE');
      assert.ok(err.message.startsWith(`${name}: CUDA unavailable: `), err.message);
      assert.ok(err.message.includes(info.reason!), err.message);
      return true;
    });
  const k = 70,
    m = 3,
    n = 5;
  const g = convGeometry(1, 5, 5, 3, 3, 3, 4, 1, 'same');
  unavailable(
    () =>
      cuda.xnorGemmPacked(
        new Int32Array(packedInt32Length(m, k)),
        new Int32Array(packedInt32Length(n, k)),
        m,
        n,
        k,
        new Float32Array(m * n),
      ),
    'xnorGemmPacked',
  );
  unavailable(
    () =>
      cuda.binaryConv2d(
        new Float32Array(inputSize(g)),
        new Float32Array(filterSize(g)),
        g,
        new Float32Array(g.batch * g.outH * g.outW * g.outC),
      ),
    'binaryConv2d',
  );
  unavailable(() => cuda.packWeights(1, new Float32Array(k * n), k, n), 'packWeights');
  unavailable(() => cuda.xnorDenseCached(new Float32Array(m * k), m, k, 1, n, new Float32Array(m * n)), 'xnorDenseCached');
  assert.equal(cuda.dropWeights(), 0);
  assert.equal(cuda.info().cachedWeights, 0);
});

test('cuda addon - arguments are checked before the device, TypeErrors name them', { skip: noAddonSkip() }, () => {
  const cuda = requireCuda();
  const rejects = (fn: () => void, fnName: string, arg: string) =>
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof TypeError, `expected TypeError, got ${String(err)}`);
      assert.ok(err.message.startsWith(`${fnName}: `) && err.message.includes(`'${arg}'`), err.message);
      return true;
    });
  const k = 70,
    m = 3,
    n = 5;
  const a = new Int32Array(packedInt32Length(m, k)),
    b = new Int32Array(packedInt32Length(n, k));
  rejects(() => cuda.xnorGemmPacked(a, b, m, n, k, new Float32Array(m * n + 1)), 'xnorGemmPacked', 'c');
  rejects(() => cuda.xnorGemmPacked(b, b, m, n, k, new Float32Array(m * n)), 'xnorGemmPacked', 'a');
  rejects(() => cuda.xnorGemmPacked(a, b, m, n, 1 << 24, new Float32Array(m * n)), 'xnorGemmPacked', 'k');
  rejects(() => cuda.xnorGemmPacked(a, b, m, n, 0, new Float32Array(m * n)), 'xnorGemmPacked', 'k');
  const g = convGeometry(1, 5, 5, 3, 3, 3, 4, 1, 'same');
  const out = new Float32Array(g.batch * g.outH * g.outW * g.outC);
  rejects(
    () => cuda.binaryConv2d(new Float32Array(inputSize(g)), new Int32Array(8) as unknown as Float32Array, g, out),
    'binaryConv2d',
    'filter',
  );
  rejects(
    () => cuda.binaryConv2d(new Float32Array(inputSize(g)), new Float32Array(filterSize(g)), { ...g, strideH: 0 }, out),
    'binaryConv2d',
    'geometry.strideH',
  );
  rejects(() => cuda.packWeights(-1, new Float32Array(k * n), k, n), 'packWeights', 'key');
  rejects(() => cuda.packWeights(1.5, new Float32Array(k * n), k, n), 'packWeights', 'key');
  rejects(() => cuda.packWeights(1, new Float32Array(k * n - 1), k, n), 'packWeights', 'w');
  rejects(() => cuda.xnorDenseCached(new Float32Array(m * k), m, k, 1, n, new Float32Array(1)), 'xnorDenseCached', 'out');
  rejects(() => cuda.dropWeights('x' as unknown as number), 'dropWeights', 'key');
  assert.throws(() => (cuda.xnorDenseCached as (...a: unknown[]) => void)(), /xnorDenseCached: expected 6 arguments, got 0/);
});

test('engine - BNN_CUDA=0 never loads the CUDA addon; otherwise initEngine reports gpu and why not', () => {
  requireAddon(); // the native backend is what routes to the GPU
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bnn-cuda-'));
  try {
    // A stand-in addon that leaves a marker when anything requires it.
    const marker = path.join(dir, 'loaded');
    const trap = path.join(dir, 'trap.cjs');
    writeFileSync(trap, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x'); throw new Error('trap addon');\n`);
    const script = `import { initEngine } from ${JSON.stringify(path.join(root, 'src/engine/select.ts'))};
      import { bnnGpuActive } from ${JSON.stringify(path.join(root, 'src/engine/bnn-kernels.ts'))};
      const warnings = [];
      const info = await initEngine({ backend: 'native', threads: 1, warn: (m) => warnings.push(m) });
      console.log(JSON.stringify({ backend: info.backend, gpu: info.gpu, gpuReason: info.gpuReason, active: bnnGpuActive(), warnings }));`;
    const run = (env: Record<string, string>) => {
      rmSync(marker, { force: true });
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, BNN_CUDA_ADDON: trap, ...env },
      });
      assert.equal(r.status, 0, r.stderr);
      return { ...JSON.parse(r.stdout.trim().split('\n').at(-1)!), loaded: existsSync(marker) };
    };
    assert.deepEqual(run({ BNN_CUDA: '0' }), {
      backend: 'native',
      gpu: null,
      gpuReason: 'disabled by BNN_CUDA=0',
      active: false,
      warnings: [],
      loaded: false,
    });
    // Control: without BNN_CUDA=0 the engine does try the addon, and a broken one leaves the CPU path.
    assert.deepEqual(run({ BNN_CUDA: '' }), {
      backend: 'native',
      gpu: null,
      gpuReason: 'bnn_cuda.node failed to load: trap addon',
      active: false,
      warnings: [],
      loaded: true,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- with a GPU: bit-exact against the CPU addon ------------------------------------------------

test('cuda addon - with a GPU, GEMM, cached dense and conv equal the CPU addon exactly', {
  skip: noAddonSkip() || (gpuPresent ? false : 'no usable GPU on this host'),
}, () => {
  const cuda = requireCuda();
  const cpu = requireAddon();
  const info = cuda.info();
  assert.ok(info.gemmVariant === 'mma' || info.gemmVariant === 'popc', JSON.stringify(info));
  for (const [m, k, n] of [
    [1, 1, 1],
    [3, 70, 5],
    [64, 512, 130],
    [257, 1000, 96],
    [33, 4097, 300],
  ]) {
    const x = randomFloats(m * k, m + k),
      w = randomFloats(k * n, k + n + 7);
    const xp = new Int32Array(packedInt32Length(m, k)),
      wp = new Int32Array(packedInt32Length(n, k));
    cpu.packRows(x, m, k, xp);
    cpu.packCols(w, k, n, wp);
    const want = new Float32Array(m * n);
    cpu.xnorGemm(xp, wp, m, n, k, want);
    const got = new Float32Array(m * n).fill(NaN);
    cuda.xnorGemmPacked(xp, wp, m, n, k, got);
    assert.deepEqual(got, want, `xnorGemmPacked ${m}x${k}x${n}`);
    const key = 1000 + m;
    cuda.packWeights(key, w, k, n);
    for (let rep = 0; rep < 2; rep++) {
      const dense = new Float32Array(m * n).fill(NaN);
      cuda.xnorDenseCached(x, m, k, key, n, dense);
      assert.deepEqual(dense, want, `xnorDenseCached ${m}x${k}x${n} (call ${rep})`);
    }
    assert.throws(() => cuda.xnorDenseCached(x, m, k, key, n + 1, new Float32Array(m * (n + 1))), RangeError);
  }
  assert.throws(
    () => cuda.xnorDenseCached(new Float32Array(4), 1, 4, 424242, 1, new Float32Array(1)),
    /no weights cached under key 424242/,
  );
  assert.ok(cuda.dropWeights(1003) === 1 && cuda.dropWeights() >= 1 && cuda.info().cachedWeights === 0);

  for (const [batch, h, wd, c, kh, kw, oc, stride, pad] of [
    [2, 9, 7, 3, 3, 3, 8, 1, 'same'],
    [1, 12, 12, 64, 3, 3, 64, 2, 'same'],
    [3, 8, 8, 5, 2, 2, 7, 2, 'valid'],
    [1, 6, 6, 130, 1, 1, 33, 1, 'valid'],
  ] as const) {
    const g = convGeometry(batch, h, wd, c, kh, kw, oc, stride, pad);
    const x = randomFloats(inputSize(g), h * c),
      f = randomFloats(filterSize(g), oc + kh);
    const want = new Float32Array(g.batch * g.outH * g.outW * g.outC);
    cpu.binaryConv2d(x, f, g, want);
    const got = new Float32Array(want.length).fill(NaN);
    cuda.binaryConv2d(x, f, g, got);
    assert.deepEqual(got, want, `binaryConv2d ${JSON.stringify(g)}`);
  }
});
