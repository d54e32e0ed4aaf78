import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { addonPath, loadNative, packedInt32Length } from './addon.js';
import { convGeometry, requireAddon } from './testing.js';

/** Asserts fn throws a TypeError whose message names `fn` and the argument, plus any extra fragments. */
function rejects(fn: () => void, name: string, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TypeError, `expected TypeError, got ${String(err)}`);
    for (const f of [`'${name}'`, ...fragments]) assert.ok(err.message.includes(f), `"${err.message}" should mention ${f}`);
    return true;
  });
}

test('loadNative - loads once and caches; info reports the ISA, kernels and threads', () => {
  const first = loadNative();
  assert.ok(first.addon, `native addon required: ${first.reason}`);
  assert.equal(loadNative(), first);
  const info = first.addon.info();
  assert.match(info.version, /^\d+\.\d+\.\d+$/);
  assert.ok(info.kernels.includes(info.kernel));
  assert.equal(info.kernels.at(-1), 'portable');
  assert.equal(info.kernels.includes('avx512'), info.isa.avx512f && info.isa.avx512vpopcntdq && info.isa.avx512bw);
  assert.ok(info.threads >= 1 && info.openblasThreads >= 1);
  assert.match(info.openblasConfig, /OpenBLAS/);
  assert.ok(addonPath().endsWith('native/build/Release/bnn_native.node'));
});

test('setKernel - forces each variant, rejects unknown names listing the available ones', () => {
  const addon = requireAddon();
  const { kernels } = addon.info();
  try {
    for (const k of kernels) {
      assert.equal(addon.setKernel(k), k);
      assert.equal(addon.info().kernel, k);
    }
    assert.throws(
      () => addon.setKernel('sse9' as never),
      (err: unknown) => err instanceof RangeError && err.message.includes("'sse9'") && kernels.every((k) => err.message.includes(k)),
    );
    assert.equal(addon.setKernel('auto'), kernels[0]);
  } finally {
    addon.setKernel('auto');
  }
});

test('BNN_XNOR_KERNEL - picks the initial variant; an unsupported one falls back to auto and says so', () => {
  const addonModule = fileURLToPath(new URL('./addon.ts', import.meta.url));
  const script = `import { loadNative } from ${JSON.stringify(addonModule)};
    const i = loadNative().addon.info(); console.log(JSON.stringify([i.kernel, i.kernelSelection, i.kernels[0]]));`;
  const run = (value: string) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, BNN_XNOR_KERNEL: value },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as [string, string, string];
  };
  assert.deepEqual(run('portable').slice(0, 2), ['portable', 'BNN_XNOR_KERNEL=portable']);
  const [kernel, note, best] = run('sse9');
  assert.equal(kernel, best);
  assert.match(note, /BNN_XNOR_KERNEL=sse9 is not available here \(available: .*portable\)/);
});

test('setThreads - sets the pool; OpenBLAS stays at 1 thread while sgemm is tiled, follows the pool otherwise; 0 means all cores', () => {
  const addon = requireAddon();
  const before = addon.info().threads;
  const mode = addon.sgemmMode();
  try {
    assert.equal(addon.sgemmMode('tiled'), 'tiled');
    assert.equal(addon.setThreads(3), 3);
    assert.equal(addon.info().threads, 3);
    assert.equal(addon.info().openblasThreads, 1);
    addon.sgemmMode('openblas');
    assert.equal(addon.info().openblasThreads, 3);
    assert.equal(addon.setThreads(2), 2);
    assert.equal(addon.info().openblasThreads, 2);
    addon.sgemmMode('tiled');
    assert.equal(addon.info().openblasThreads, 1);
    assert.ok(addon.setThreads(0) >= 1);
    rejects(() => addon.setThreads(-1), 'n', 'integer >= 0');
    rejects(() => addon.setThreads(1.5), 'n');
  } finally {
    addon.sgemmMode(mode);
    addon.setThreads(before);
  }
});

test('binding - rejects bad arguments with a TypeError naming the argument and what was expected', () => {
  const addon = requireAddon();
  const f = (n: number) => new Float32Array(n);
  const bits = (rows: number, k: number) => new Int32Array(packedInt32Length(rows, k));
  // xnorGemm: wrong types, wrong lengths, misaligned packed words, bad dims.
  rejects(() => addon.xnorGemm(f(4) as never, bits(2, 64), 2, 2, 64, f(4)), 'a', 'Int32Array', 'Float32Array of length 4');
  rejects(() => addon.xnorGemm(bits(2, 64), bits(3, 64), 2, 2, 64, f(4)), 'b', '2*n*ceil(k/64)', '= 4');
  rejects(() => addon.xnorGemm(bits(2, 64), bits(2, 64), 2, 2, 64, f(5)), 'c', 'm*n = 4', 'length 5');
  const misaligned = new Int32Array(5).subarray(1);
  rejects(() => addon.xnorGemm(misaligned, bits(2, 64), 2, 2, 64, f(4)), 'a', 'byteOffset a multiple of 8', 'byteOffset 4');
  rejects(() => addon.xnorGemm(bits(2, 64), bits(2, 64), 2, 2, 0, f(4)), 'k', 'integer >= 1');
  rejects(() => addon.xnorGemm(bits(2, 64), bits(2, 64), 2.5, 2, 64, f(4)), 'm');
  assert.throws(() => (addon.xnorGemm as (...a: unknown[]) => void)(bits(2, 64), bits(2, 64), 2, 2, 64, f(4), 1), {
    name: 'TypeError',
    message: 'xnorGemm: expected 6 arguments, got 7',
  });
  // packRows / packCols.
  rejects(() => addon.packRows(f(10), 2, 5, bits(1, 5)), 'dst', 'rows*ceil(k/64)');
  rejects(() => addon.packCols(f(9), 5, 2, bits(2, 5)), 'src', 'k*n = 10');
  // sgemm.
  rejects(() => addon.sgemm(0 as never, false, 1, 1, 1, 1, f(1), f(1), 0, f(1)), 'transA', 'boolean');
  rejects(() => addon.sgemm(false, false, 2, 3, 4, 1, f(8), f(11), 0, f(6)), 'b', 'k*n = 12');
  rejects(() => addon.sgemm(false, false, 1, 1, 1, NaN, f(1), f(1), 0, f(1)), 'alpha', 'finite number');
  // conv: geometry fields are named.
  const g = convGeometry(1, 4, 4, 2, 3, 3, 2, 1, 'same');
  rejects(() => addon.conv2d(f(32), f(36), { ...g, strideH: 0 }, f(32)), 'geometry.strideH', 'integer >= 1');
  rejects(() => addon.conv2d(f(32), f(36), { ...g, kW: undefined } as never, f(32)), 'geometry.kW');
  rejects(() => addon.conv2d(f(31), f(36), g, f(32)), 'x', 'batch*inH*inW*inC = 32');
  rejects(() => addon.conv2dBackpropFilter(f(32), f(32), g, f(35)), 'dw', 'kH*kW*inC*outC = 36');
  rejects(() => addon.binaryConv2d(f(32), new Uint8Array(36) as never, g, f(32)), 'filter', 'Int32Array of packed filter bits');
  // Outputs must not overlap inputs.
  const shared = new Float32Array(64);
  rejects(() => addon.conv2d(shared.subarray(0, 32), f(36), g, shared.subarray(16, 48)), 'out', 'must not overlap');
  // Element-wise.
  rejects(() => addon.signInto(f(3), f(4)), 'dst', 'src.length = 3');
  rejects(
    () => addon.adamw(f(2), f(2), f(2), f(2), { lr: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } as never),
    'options.step',
    'finite number',
  );
  rejects(() => addon.adamw(f(2), f(2), f(2), f(2), 3 as never), 'options', 'options object');
  rejects(() => addon.batchNormForward(f(6), 2, 3, f(2), null, 1e-5, f(6), f(3), f(3)), 'gamma', 'channels = 3');
  rejects(() => addon.batchNormBackward(f(6), f(6), 2, 3, null, f(3), f(3), f(5), null, null), 'dx', 'rows*channels = 6');
});

test('binding - packed buffers work at 8-byte-aligned offsets inside larger arrays', () => {
  const addon = requireAddon();
  const k = 100,
    m = 2,
    n = 3;
  const a = Float32Array.from({ length: m * k }, (_, i) => (i % 3 === 0 ? -1 : 1));
  const w = Float32Array.from({ length: k * n }, (_, i) => (i % 5 === 0 ? -1 : 1));
  const pool = new Int32Array(2 + packedInt32Length(m, k) + packedInt32Length(n, k));
  const aBits = pool.subarray(2, 2 + packedInt32Length(m, k));
  const wBits = pool.subarray(2 + packedInt32Length(m, k));
  addon.packRows(a, m, k, aBits);
  addon.packCols(w, k, n, wBits);
  const c = new Float32Array(m * n + 1).subarray(1);
  addon.xnorGemm(aBits, wBits, m, n, k, c);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * w[t * n + j];
      assert.equal(c[i * n + j], s);
    }
});
