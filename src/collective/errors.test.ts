import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CollectiveConfigError,
  CollectiveFailedError,
  CollectiveTimeoutError,
  MembershipChangedError,
  TransportClosedError,
} from './errors.js';

test('errors - collective failures and membership changes are told apart by class', () => {
  const timeout = new CollectiveTimeoutError(3, 500, { missingRanks: [1, 2], missingShards: [2] });
  assert.ok(timeout instanceof CollectiveFailedError);
  assert.equal(timeout.name, 'CollectiveTimeoutError');
  assert.equal(timeout.step, 3);
  assert.deepEqual(timeout.missingRanks, [1, 2]);
  assert.match(timeout.message, /step 3 timed out after 500 ms: no contribution from rank\(s\) 1, 2; no reduced result for shard\(s\) 2/);
  const closed = new TransportClosedError('gone', { cause: new Error('socket') });
  assert.ok(closed instanceof CollectiveFailedError);
  assert.equal((closed.cause as Error).message, 'socket');
  const changed = new MembershipChangedError(4);
  assert.ok(!(changed instanceof CollectiveFailedError));
  assert.equal(changed.generation, 4);
  assert.equal(changed.name, 'MembershipChangedError');
  assert.ok(!(new CollectiveConfigError('x') instanceof CollectiveFailedError));
});
