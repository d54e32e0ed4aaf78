// Shared helpers for the native addon tests: the addon (or a clear failure), seeded data,
// tfjs-style conv geometry and plain-JS reference kernels (double accumulation).
import assert from 'node:assert/strict';
import { loadNative, type Conv2DGeometry, type NativeAddon } from './addon.js';

/** The addon, or an assertion failure saying why it is missing (tests must not skip silently). */
export function requireAddon(): NativeAddon {
  const loaded = loadNative();
  assert.ok(loaded.addon, `native addon required (CI builds it with npm run build:native): ${loaded.reason}`);
  return loaded.addon;
}

/** Runs fn once per XNOR kernel variant the CPU supports, forced with setKernel; restores auto. */
export function forEachKernel(addon: NativeAddon, fn: (name: string) => void): void {
  const kernels = addon.info().kernels;
  assert.ok(kernels.includes('portable'), `the portable variant is always available, got [${kernels.join(', ')}]`);
  try {
    for (const name of kernels) {
      assert.equal(addon.setKernel(name), name);
      fn(name);
    }
  } finally {
    addon.setKernel('auto');
  }
}

/** Seeded uniform values in [-1, 1) with some exact +0 and -0 (xorshift32). */
export function randomFloats(n: number, seed: number, zeros = true): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2147483648 - 1;
    if (zeros && s % 13 === 0) out[i] = s % 2 === 0 ? 0 : -0;
  }
  return out;
}

export const sign = (x: number): number => (x < 0 ? -1 : 1);

/** tfjs 'same' / 'valid' geometry (computeConv2DInfo with dilation 1, NHWC). */
export function convGeometry(
  batch: number,
  inH: number,
  inW: number,
  inC: number,
  kH: number,
  kW: number,
  outC: number,
  stride: number,
  pad: 'same' | 'valid',
): Conv2DGeometry {
  let outH: number,
    outW: number,
    padTop = 0,
    padLeft = 0;
  if (pad === 'same') {
    outH = Math.ceil(inH / stride);
    outW = Math.ceil(inW / stride);
    padTop = Math.floor(Math.max(0, (outH - 1) * stride + kH - inH) / 2);
    padLeft = Math.floor(Math.max(0, (outW - 1) * stride + kW - inW) / 2);
  } else {
    outH = Math.ceil((inH - kH + 1) / stride);
    outW = Math.ceil((inW - kW + 1) / stride);
  }
  return { batch, inH, inW, inC, kH, kW, outC, strideH: stride, strideW: stride, padTop, padLeft, outH, outW };
}

export const inputSize = (g: Conv2DGeometry) => g.batch * g.inH * g.inW * g.inC;
export const filterSize = (g: Conv2DGeometry) => g.kH * g.kW * g.inC * g.outC;
export const outputSize = (g: Conv2DGeometry) => g.batch * g.outH * g.outW * g.outC;

/** Visits every (output index, input index, filter index) triple that contributes (zero padding skipped). */
function forEachConvTerm(g: Conv2DGeometry, visit: (o: number, x: number, w: number) => void): void {
  for (let n = 0; n < g.batch; n++)
    for (let oh = 0; oh < g.outH; oh++)
      for (let ow = 0; ow < g.outW; ow++)
        for (let kh = 0; kh < g.kH; kh++) {
          const ih = oh * g.strideH + kh - g.padTop;
          if (ih < 0 || ih >= g.inH) continue;
          for (let kw = 0; kw < g.kW; kw++) {
            const iw = ow * g.strideW + kw - g.padLeft;
            if (iw < 0 || iw >= g.inW) continue;
            for (let c = 0; c < g.inC; c++)
              for (let o = 0; o < g.outC; o++) {
                visit(
                  ((n * g.outH + oh) * g.outW + ow) * g.outC + o,
                  ((n * g.inH + ih) * g.inW + iw) * g.inC + c,
                  ((kh * g.kW + kw) * g.inC + c) * g.outC + o,
                );
              }
          }
        }
}

export function convRef(x: Float32Array, w: Float32Array, g: Conv2DGeometry): Float64Array {
  const out = new Float64Array(outputSize(g));
  forEachConvTerm(g, (o, xi, wi) => {
    out[o] += x[xi] * w[wi];
  });
  return out;
}

export function convBackpropInputRef(dy: Float32Array, w: Float32Array, g: Conv2DGeometry): Float64Array {
  const dx = new Float64Array(inputSize(g));
  forEachConvTerm(g, (o, xi, wi) => {
    dx[xi] += dy[o] * w[wi];
  });
  return dx;
}

export function convBackpropFilterRef(x: Float32Array, dy: Float32Array, g: Conv2DGeometry): Float64Array {
  const dw = new Float64Array(filterSize(g));
  forEachConvTerm(g, (o, xi, wi) => {
    dw[wi] += x[xi] * dy[o];
  });
  return dw;
}

/** Asserts |got − want| <= abs + rel·|want| element-wise, reporting the worst index. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const excess = err - (abs + rel * Math.abs(want[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  assert.ok(worst < 0, `${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} (rel ${rel}, abs ${abs})`);
}

/** Asserts exact equality, reporting the first differing index. */
export function assertExact(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) assert.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
  }
}
