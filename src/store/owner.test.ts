import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { defaultRunConfig } from '../config/schema.js';
import type { ProcessOwner } from '../util/process-owner.js';
import { openStore, type Store } from './db.js';
import { RunStateError } from './errors.js';
import { listEvents } from './events.js';
import { queryRuns, type RunsQuery } from './run-queries.js';
import { activeRunOwners, claimRun, createRun, finishRun, markRunning, runOwner } from './runs.js';

function memoryStore(t: TestContext): Store {
  const store = openStore(':memory:');
  t.after(() => store.close());
  return store;
}

const trainer: ProcessOwner = { host: 'node-a', pid: 4242, start: 'boot:1:100' };
const coordinator: ProcessOwner = { host: 'node-a', pid: 5151, start: 'boot:1:200' };
const config = defaultRunConfig();
const all: RunsQuery = { sort: 'created', descending: false, limit: 100 };

test('store owner - createRun and markRunning record the owner; a takeover from RUNNING names the owner it replaces', (t) => {
  const { db } = memoryStore(t);
  const run = createRun(db, { config, owner: trainer });
  assert.deepEqual([run.ownerHost, run.ownerPid, run.ownerStart], ['node-a', 4242, 'boot:1:100']);
  assert.deepEqual(runOwner(run), trainer);
  markRunning(db, run.id, { backend: 'cpu', threads: 1, owner: trainer });
  const taken = markRunning(db, run.id, { backend: 'cpu', threads: 1, owner: coordinator });
  assert.deepEqual(runOwner(taken), coordinator);
  const [started, resumed] = listEvents(db, run.id).filter((e) => e.kind === 'started' || e.kind === 'resumed');
  assert.deepEqual(started?.detail, { from: 'PENDING', backend: 'cpu', threads: 1 });
  assert.deepEqual(resumed?.detail, { from: 'RUNNING', backend: 'cpu', threads: 1, previousOwner: trainer });
  const unowned = createRun(db, { config });
  assert.equal(runOwner(unowned), null, 'no owner given (or a run recorded before schema 5)');
});

test('store owner - claimRun moves the owner without changing the status; a COMPLETED run cannot be claimed', (t) => {
  const { db } = memoryStore(t);
  const run = createRun(db, { config, owner: trainer });
  markRunning(db, run.id, { backend: 'cpu', threads: 1, owner: trainer });
  const claimed = claimRun(db, run.id, coordinator);
  assert.equal(claimed.status, 'RUNNING');
  assert.deepEqual(runOwner(claimed), coordinator);
  finishRun(db, run.id, 'COMPLETED');
  assert.throws(() => claimRun(db, run.id, trainer), RunStateError);
});

test('store owner - activeRunOwners lists PENDING and RUNNING runs only; the status filter treats abandonedIds as ABANDONED', (t) => {
  const { db } = memoryStore(t);
  const at = (m: number) => new Date(Date.UTC(2025, 0, 1, 0, m));
  const pending = createRun(db, { config, owner: coordinator, now: at(1) });
  const live = createRun(db, { config, owner: trainer, now: at(2) });
  markRunning(db, live.id, { backend: 'cpu', threads: 1 });
  const dead = createRun(db, { config, owner: trainer, now: at(3) });
  markRunning(db, dead.id, { backend: 'cpu', threads: 1 });
  const done = createRun(db, { config, owner: trainer, now: at(4) });
  finishRun(db, done.id, 'FAILED', { error: 'x' });
  assert.deepEqual(
    activeRunOwners(db)
      .map((r) => [r.id, r.status, r.ownerPid])
      .sort(),
    [
      [pending.id, 'PENDING', 5151],
      [live.id, 'RUNNING', 4242],
      [dead.id, 'RUNNING', 4242],
    ].sort(),
  );
  const ids = (statuses: RunsQuery['statuses'], abandonedIds?: string[]) =>
    queryRuns(db, { ...all, statuses, ...(abandonedIds ? { abandonedIds } : {}) }).map((r) => r.id);
  assert.deepEqual(ids(['RUNNING']), [live.id, dead.id]);
  assert.deepEqual(ids(['RUNNING'], [dead.id]), [live.id]);
  assert.deepEqual(ids(['ABANDONED'], [dead.id]), [dead.id]);
  assert.deepEqual(ids(['ABANDONED']), []);
  assert.deepEqual(ids(['ABANDONED', 'FAILED'], [dead.id]), [dead.id, done.id]);
  assert.deepEqual(ids(['PENDING', 'RUNNING', 'ABANDONED'], [dead.id]), [pending.id, live.id, dead.id]);
  assert.equal(queryRuns(db, { ...all, abandonedIds: [dead.id] }).length, 4, 'without a status filter the ids select nothing');
});
