import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../engine/select.js';
import { makeBatch } from './trainer.js';
import { Rng } from '../util/rng.js';
import type { Split } from '../data/index.js';

await initEngine({ backend: 'cpu', threads: 1 });

// Two 3×4 single-channel images with distinct pixels 1..12 and 13..24.
const split: Split = { images: Uint8Array.from({ length: 24 }, (_, i) => i + 1), labels: Uint8Array.of(3, 7), n: 2 };
const norm = { mode: 'none' as const, scale: Float32Array.of(1), offset: Float32Array.of(0) };
const shape: [number, number, number] = [3, 4, 1];

function batch(augment?: Parameters<typeof makeBatch>[4]): number[][] {
  const { x, labels } = makeBatch(split, [0, 1], norm, shape, augment);
  assert.deepEqual([...labels], [3, 7]);
  const v = Array.from(x.dataSync());
  x.dispose();
  return [v.slice(0, 12), v.slice(12)];
}

test('trainer - a batch without augmentation is the raw images', () => {
  assert.deepEqual(batch(), [
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    [13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24],
  ]);
});

test('trainer - hflip mirrors whole rows of the chosen images and repeats for the same stream', () => {
  const a = batch({ hflip: true, shiftPixels: 0, rng: Rng.derive(1, 'augment', 0, 0) });
  const b = batch({ hflip: true, shiftPixels: 0, rng: Rng.derive(1, 'augment', 0, 0) });
  assert.deepEqual(a, b);
  const flipped = (img: number[]) => [0, 1, 2].flatMap((r) => img.slice(r * 4, r * 4 + 4).reverse());
  const plain = batch();
  for (let i = 0; i < 2; i++) assert.ok(a[i].join() === plain[i].join() || a[i].join() === flipped(plain[i]).join());
  // Over many draws both outcomes occur.
  const seen = new Set<string>();
  for (let s = 0; s < 16; s++) seen.add(batch({ hflip: true, shiftPixels: 0, rng: new Rng(s) })[0].join());
  assert.equal(seen.size, 2);
});

test('trainer - shift translates with zero fill and keeps every pixel in place otherwise', () => {
  for (let s = 0; s < 20; s++) {
    const [img] = batch({ hflip: false, shiftPixels: 1, rng: new Rng(s) });
    // Every non-zero value must sit at its source position moved by one common (dx, dy).
    const moves = new Set<string>();
    img.forEach((v, i) => {
      if (v === 0) return;
      const src = v - 1;
      moves.add(`${(i % 4) - (src % 4)},${Math.floor(i / 4) - Math.floor(src / 4)}`);
    });
    assert.ok(moves.size <= 1, `seed ${s}: ${[...moves]}`);
    const [dx, dy] = [...moves][0]!.split(',').map(Number);
    assert.ok(Math.abs(dx) <= 1 && Math.abs(dy) <= 1);
    assert.equal(img.filter((v) => v !== 0).length, (4 - Math.abs(dx)) * (3 - Math.abs(dy)));
  }
  assert.equal(tf.memory().numTensors, 0);
});
