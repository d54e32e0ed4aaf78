import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoopbackHub, subjectMatches } from './transport.js';
import { TransportClosedError } from './errors.js';

test('transport - NATS wildcard matching', () => {
  assert.ok(subjectMatches('bnn.r.1.rs.*.0.*', 'bnn.r.1.rs.7.0.3'));
  assert.ok(!subjectMatches('bnn.r.1.rs.*.0.*', 'bnn.r.1.rs.7.1.3'));
  assert.ok(!subjectMatches('bnn.r.1.rs.*.0.*', 'bnn.r.2.rs.7.0.3'));
  assert.ok(!subjectMatches('bnn.r.1.rs.*.0.*', 'bnn.r.1.rs.7.0'));
  assert.ok(subjectMatches('bnn.>', 'bnn.r.1'));
  assert.ok(!subjectMatches('bnn.>', 'bnn'));
  assert.ok(subjectMatches('a.b', 'a.b'));
});

test('transport - loopback delivers to matching subscribers of other connections only, copies, and releases on close', async () => {
  const hub = new LoopbackHub({ maxPayload: 16 });
  const a = hub.connect();
  const b = hub.connect();
  const subA = a.subscribe('x.*');
  const subB = b.subscribe('x.*');
  const data = new Uint8Array([1, 2, 3]);
  a.publish('x.1', data);
  data[0] = 9; // the publisher may not modify it, but the loopback copied anyway
  assert.throws(() => a.publish('x.1', new Uint8Array(17)), /max_payload 16/);
  await a.flush();
  const it = subB[Symbol.asyncIterator]();
  const first = await it.next();
  assert.deepEqual([...(first.value?.data ?? [])], [1, 2, 3]);
  assert.equal(first.value?.subject, 'x.1');
  assert.equal(hub.subscriptionCount, 2);
  await a.close();
  assert.ok(subA.stopped);
  assert.throws(() => a.publish('x.1', data), TransportClosedError);
  subB.stop();
  assert.equal(hub.subscriptionCount, 0);
  await b.close();
});
