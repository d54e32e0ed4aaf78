import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { tmpDir } from '../../test/helpers/tmp.js';
import { openStore, type Store } from './db.js';
import { StoreBusyError, StoreCorruptError } from './errors.js';
import { StoreWriteQueue } from './write-queue.js';

/** A store, a second connection to its file (the other process), and a fake clock. */
async function setup(t: TestContext, busyTimeoutMs = 200) {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('bnn.db'), { busyTimeoutMs });
  const other = new Database(store.path, { timeout: 1000 });
  t.after(() => {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
    store.close();
  });
  const clock = { ms: 1_000_000 };
  const notices: string[] = [];
  const queue = new StoreWriteQueue(store, {
    attemptTimeoutMs: 20,
    backoffMs: 100,
    maxBackoffMs: 400,
    what: 'epoch metrics',
    notice: (line) => notices.push(line),
    now: () => clock.ms,
  });
  return { store, other, clock, notices, queue };
}

function keys(store: Store): string[] {
  return (store.sqlite.prepare("SELECT key FROM meta WHERE key LIKE 'k%' ORDER BY rowid").all() as { key: string }[]).map((r) => r.key);
}

/** A write of one `meta` row. */
function writer(store: Store, key: string): () => void {
  return () => {
    store.sqlite.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(key, 'x');
  };
}

test('store write queue - writes go straight in while the store is free', async (t) => {
  const { store, queue, notices } = await setup(t);
  queue.push(writer(store, 'k1'));
  queue.push(writer(store, 'k2'));
  assert.equal(queue.size, 0);
  assert.deepEqual(keys(store), ['k1', 'k2']);
  assert.deepEqual(notices, []);
});

test('store write queue - while another connection holds the lock, writes are kept in order and retried with backoff', async (t) => {
  const { store, other, clock, notices, queue } = await setup(t);
  other.exec('BEGIN IMMEDIATE');
  queue.push(writer(store, 'k1'));
  queue.push(writer(store, 'k2')); // not tried: the retry is not due
  assert.equal(queue.size, 2);
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /bnn\.db is locked by another process; keeping epoch metrics in memory and retrying with backoff$/);
  clock.ms += 100; // due: tried, still locked; the next delay doubles
  assert.equal(queue.poll(), false);
  other.exec('COMMIT');
  clock.ms += 100;
  assert.equal(queue.poll(), false, 'the second retry waits 200 ms (not tried yet, though the store is free now)');
  clock.ms += 100;
  assert.equal(queue.poll(), true);
  assert.equal(queue.size, 0);
  assert.deepEqual(keys(store), ['k1', 'k2']);
  assert.equal(notices.length, 2);
  assert.match(notices[1]!, /bnn\.db is free again after 0\.3 s; the epoch metrics kept meanwhile are written$/);
  assert.equal(store.sqlite.pragma('busy_timeout', { simple: true }), 200, 'the store keeps its own busy timeout');
});

test('store write queue - drain gives up after the busy timeout: StoreBusyError saying what is not written; nothing is dropped', async (t) => {
  const { store, other, queue } = await setup(t);
  other.exec('BEGIN IMMEDIATE');
  queue.push(writer(store, 'k1'));
  queue.push(writer(store, 'k2'));
  assert.throws(
    () => queue.drain('run r-1 is not recorded as ended'),
    (err: unknown) =>
      err instanceof StoreBusyError &&
      err.waitedMs === 200 &&
      /the database is locked by another process \(waited 200 ms\); 2 queued write\(s\) of epoch metrics are not in it; run r-1 is not recorded as ended$/.test(
        err.message,
      ),
  );
  assert.equal(queue.size, 2);
  other.exec('COMMIT');
  queue.drain();
  assert.deepEqual(keys(store), ['k1', 'k2']);
});

test('store write queue - any other failure breaks it: that store error from this call and every later one', async (t) => {
  const { store, queue } = await setup(t);
  const corrupt = Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' });
  assert.throws(
    () =>
      queue.push(() => {
        throw corrupt;
      }),
    StoreCorruptError,
  );
  assert.throws(() => queue.push(writer(store, 'k1')), StoreCorruptError);
  assert.throws(() => queue.poll(), StoreCorruptError);
  assert.throws(() => queue.drain(), StoreCorruptError);
  assert.deepEqual(keys(store), []);
});
