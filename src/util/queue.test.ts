import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue } from './queue.js';

test('queue - delivers pushed items in order, then ends after stop()', async () => {
  const q = new AsyncQueue<number>();
  q.push(1);
  q.push(2);
  setImmediate(() => {
    q.push(3);
    q.stop();
    q.push(4);
  });
  const got: number[] = [];
  for await (const v of q) got.push(v);
  assert.deepEqual(got, [1, 2, 3]);
});

test('queue - stop(err) is idempotent, rethrows to the consumer and runs cleanup once', async () => {
  const q = new AsyncQueue<number>();
  let cleanups = 0;
  q.onStop(() => cleanups++);
  const reading = q.next();
  q.stop(new Error('boom'));
  q.stop(new Error('again'));
  q.stop();
  await assert.rejects(reading, /boom/);
  await assert.rejects(q.next(), /boom/);
  assert.equal(cleanups, 1);
  let late = 0;
  q.onStop(() => late++);
  assert.equal(late, 1);
});

test('queue - breaking out of for-await stops the queue', async () => {
  const q = new AsyncQueue<number>();
  let stopped = false;
  q.onStop(() => {
    stopped = true;
  });
  q.push(1);
  q.push(2);
  for await (const v of q) if (v === 1) break;
  assert.ok(stopped);
  assert.ok(q.stopped);
});
