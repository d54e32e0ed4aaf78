import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { test } from 'node:test';
import { writeSafetensors } from '../src/checkpoint/index.js';
import { defaultRunConfig } from '../src/config/index.js';
import type { AsyncQueue } from '../src/util/queue.js';
import type { Assignment, MetricsReport } from '../src/rpc/index.js';
import { addCheckpoint, finishRun, listEvents, listMembers, openStore } from '../src/store/index.js';
import { Coordinator } from './coordinator.js';
import { NotResumableError } from './errors.js';
import { parseCoordinatorOptions } from './options.js';

function setup(t: { after(fn: () => void): void }) {
  let clock = 1_000_000;
  const store = openStore(':memory:');
  const c = new Coordinator({
    db: store.db,
    now: () => clock,
    options: parseCoordinatorOptions({ heartbeatIntervalMs: 100, suspectAfterMs: 300, deadAfterMs: 1000, sweepIntervalMs: 1_000_000 }),
  });
  t.after(() => {
    c.close();
    store.close();
  });
  const queues = new Map<string, AsyncQueue<Partial<Assignment>>>();
  const join = (n: number): string[] =>
    Array.from({ length: n }, (_, i) => {
      const { worker_id: id } = c.register({ hostname: `h${i}`, hardware_json: '', threads: 1, backend: 'cpu', pid: 100 + i });
      queues.set(id, c.assignments(id));
      return id;
    });
  /** Assignments pushed to a worker so far (drained). */
  const drain = async (id: string): Promise<Array<Partial<Assignment>>> => {
    const q = queues.get(id)!;
    const out: Array<Partial<Assignment>> = [];
    while (q.length > 0) {
      const r = await q.next();
      if (!r.done) out.push(r.value);
    }
    return out;
  };
  const report = (m: Partial<MetricsReport>): MetricsReport => ({
    worker_id: '',
    run_id: '',
    generation: 0,
    rank: 0,
    epoch: 0,
    train_loss: 0,
    train_acc: 0,
    test_loss: -1,
    test_acc: -1,
    lr: 0,
    samples_per_s: 0,
    epoch_time_s: 0,
    done: false,
    error: '',
    steps: 0,
    collective_error: '',
    missing_ranks: [],
    failed_step: 0,
    skipped_steps: 0,
    step_seconds: [],
    allreduce_bytes: 0,
    allreduce_seconds: 0,
    telemetry_json: '',
    rejected_messages: 0,
    rejected_subjects: [],
    backend: '',
    model_size_bytes: 0,
    packed_size_bytes: 0,
    energy_json: '',
    leaving: '',
    ...m,
  });
  const config = { ...defaultRunConfig(), name: 'unit' };
  return {
    c,
    store,
    join,
    drain,
    report,
    config,
    tick: (ms: number) => {
      clock += ms;
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

test('coordinator elastic - a member silent past deadAfterMs is dead; survivors form generation 2 with new ranks and resync', async (t) => {
  const { c, store, join, drain, config, tick } = setup(t);
  const ids = join(3);
  const run = c.submit(JSON.stringify(config), 3, '');
  await settle();
  for (const id of ids) assert.equal((await drain(id)).find((a) => a.kind === 'ASSIGN')?.generation, 1);
  tick(500);
  c.heartbeat(ids[0]!);
  c.heartbeat(ids[2]!);
  c.sweep();
  tick(600);
  c.heartbeat(ids[0]!);
  c.heartbeat(ids[2]!);
  c.sweep(); // ids[1] silent 1100 ms ≥ deadAfterMs
  await settle();
  const a0 = (await drain(ids[0]!)).at(-1)!;
  const a2 = (await drain(ids[2]!)).at(-1)!;
  assert.deepEqual([a0.kind, a0.generation, a0.rank, a0.world_size, a0.resync], ['ASSIGN', 2, 0, 2, true]);
  assert.deepEqual([a2.generation, a2.rank, a2.world_size], [2, 1, 2]);
  assert.deepEqual([c.info(run.run_id).generation, c.info(run.run_id).world_size, c.info(run.run_id).status], [2, 2, 'RUNNING']);
  const kinds = listEvents(store.db, run.run_id).map((e) => e.kind);
  assert.ok(kinds.includes('dead') && kinds.includes('generation'), kinds.join(' '));
  assert.deepEqual(
    listMembers(store.db, run.run_id, 2).map((m) => m.workerId),
    [ids[0], ids[2]],
  );
});

test('coordinator elastic - a missed deadline naming a rank evicts it; a stale report is ignored; a failure naming nobody re-forms the same members', async (t) => {
  const { c, store, join, drain, report, config } = setup(t);
  const ids = join(3);
  const { run_id } = c.submit(JSON.stringify(config), 3, '');
  await settle();
  for (const id of ids) await drain(id);
  c.reportMetrics(
    report({ worker_id: ids[0]!, run_id, generation: 1, rank: 0, collective_error: 'timed out', missing_ranks: [2], failed_step: 7 }),
  );
  await settle();
  assert.equal(c.info(run_id).generation, 2);
  assert.equal(c.info(run_id).world_size, 2);
  assert.throws(() => c.heartbeat(ids[2]!), /unknown worker/);
  // the other survivor's report of the same failure is stale now
  c.reportMetrics(
    report({ worker_id: ids[1]!, run_id, generation: 1, rank: 1, collective_error: 'timed out', missing_ranks: [2], failed_step: 7 }),
  );
  assert.equal(c.info(run_id).generation, 2);
  // a dropped transport names nobody: the same two re-form as generation 3
  c.reportMetrics(
    report({ worker_id: ids[1]!, run_id, generation: 2, rank: 1, collective_error: 'NATS connection closed', failed_step: 9 }),
  );
  await settle();
  assert.deepEqual([c.info(run_id).generation, c.info(run_id).world_size], [3, 2]);
  assert.deepEqual(
    (await drain(ids[1]!)).map((a) => [a.generation, a.rank]),
    [
      [2, 1],
      [3, 1],
    ],
  );
  const failed = listEvents(store.db, run_id).filter((e) => e.kind === 'collective-failed');
  assert.equal(failed.length, 2, 'the stale report is not recorded');
});

test('coordinator elastic - an idle worker connecting while the group is short joins the next generation after the survivors', async (t) => {
  const { c, join, drain, report, config } = setup(t);
  const ids = join(2);
  const { run_id } = c.submit(JSON.stringify(config), 2, '');
  await settle();
  for (const id of ids) await drain(id);
  c.reportMetrics({
    ...report({}),
    worker_id: ids[0]!,
    run_id,
    generation: 1,
    rank: 0,
    collective_error: 'timed out',
    missing_ranks: [1],
    failed_step: 3,
  });
  assert.equal(c.info(run_id).world_size, 1);
  const [joiner] = join(1);
  await settle();
  assert.deepEqual([c.info(run_id).generation, c.info(run_id).world_size], [3, 2]);
  const j = (await drain(joiner!)).find((a) => a.kind === 'ASSIGN')!;
  assert.deepEqual([j.generation, j.rank, j.world_size, j.resync], [3, 1, 2, true]);
});

test('coordinator resume - the newest checkpoint failing its sha256 is refused by name and the previous one used; a COMPLETED run is not resumable', async (t) => {
  const { c, store, join, drain, config } = setup(t);
  const dir = await mkdtemp(joinPath(tmpdir(), 'bnn-coord-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { run_id } = c.submit(JSON.stringify(config), 2, '');
  c.cancel(run_id);
  const files = [4, 8].map((step) => joinPath(dir, `step-${step}.safetensors`));
  for (const [i, f] of files.entries()) {
    const { sha256, bytes } = await writeSafetensors(f, { x: { dtype: 'F32', shape: [1], data: Float32Array.of(i) } });
    addCheckpoint(store.db, { runId: run_id, epoch: 0, step: (i + 1) * 4, path: f, sha256, bytes });
  }
  await writeFile(files[1]!, 'tampered');
  const info = await c.resume({ run_id, workers: 0, compression: '' });
  assert.equal(info.resumed_from, files[0]);
  assert.equal(info.resumed_step, 4);
  assert.equal(info.warnings.length, 1);
  assert.match(info.warnings[0]!, new RegExp(`checkpoint ${files[1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: sha256 mismatch`));
  assert.ok(listEvents(store.db, run_id).some((e) => e.kind === 'checkpoint-refused' && e.detail?.path === files[1]));
  const ids = join(2);
  await settle();
  const a = (await drain(ids[0]!)).find((x) => x.kind === 'ASSIGN')!;
  assert.deepEqual([a.resume_path, a.resume_step, a.world_size], [files[0], 4, 2]);
  await assert.rejects(c.resume({ run_id }), NotResumableError);

  const done = c.submit(JSON.stringify(config), 5, '');
  c.cancel(done.run_id);
  store.sqlite.prepare("UPDATE runs SET status = 'RUNNING' WHERE id = ?").run(done.run_id);
  finishRun(store.db, done.run_id, 'COMPLETED', {});
  await assert.rejects(c.resume({ run_id: done.run_id }), /cannot be resumed: it has COMPLETED/);
});

test('coordinator scheduling - a run waiting for workers starts when a suspect worker heartbeats again', async (t) => {
  const { c, join, drain, config, tick } = setup(t);
  const [id] = join(1);
  tick(400);
  c.sweep(); // suspect: not scheduled
  const { run_id } = c.submit(JSON.stringify(config), 1, '');
  assert.equal(c.info(run_id).status, 'PENDING');
  c.heartbeat(id!);
  await settle();
  assert.equal(c.info(run_id).status, 'RUNNING');
  assert.equal((await drain(id!)).find((a) => a.kind === 'ASSIGN')?.run_id, run_id);
});

/** Every row of every table as text (to prove a secret never reached the store). */
function storeText(store: ReturnType<typeof openStore>): string {
  const tables = store.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
  return tables.map(({ name }) => JSON.stringify(store.sqlite.prepare(`SELECT * FROM "${name}"`).all())).join('\n');
}

test('coordinator security - every run and every resume gets its own 32-byte key, the same in each generation, sent only in ASSIGNs and never stored', async (t) => {
  const { c, store, join, drain, report, config } = setup(t);
  const ids = join(3);
  const { run_id } = c.submit(JSON.stringify(config), 3, '');
  await settle();
  const first = await Promise.all(ids.map(async (id) => (await drain(id)).find((a) => a.kind === 'ASSIGN')!));
  const key = Buffer.from(first[0]!.run_key!);
  assert.equal(key.byteLength, 32);
  for (const a of first) assert.ok(key.equals(a.run_key!), 'every member gets the same key');
  c.reportMetrics(report({ worker_id: ids[0]!, run_id, generation: 1, rank: 0, collective_error: 'timed out', missing_ranks: [2] }));
  await settle();
  const second = (await drain(ids[0]!)).find((a) => a.kind === 'ASSIGN')!;
  assert.equal(second.generation, 2);
  assert.ok(key.equals(second.run_key!), 'a re-formed generation keeps the run key');
  const other = c.submit(JSON.stringify(config), 1, '');
  c.cancel(run_id);
  c.cancel(other.run_id);
  await settle();
  await c.resume({ run_id });
  await settle();
  const resumed = (await Promise.all(ids.slice(0, 2).map(drain))).flat().find((a) => a.kind === 'ASSIGN' && a.run_id === run_id)!;
  assert.ok(resumed, 'the resumed run was assigned');
  assert.equal(resumed.run_key!.byteLength, 32);
  assert.ok(!key.equals(resumed.run_key!), 'a resume gets a new key');
  const text = storeText(store);
  for (const k of [key, Buffer.from(resumed.run_key!)]) {
    assert.ok(!text.includes(k.toString('hex')) && !text.includes(k.toString('base64')), 'the key is not in the store');
  }
});

test('coordinator security - reports of rejected messages become events naming subjects (capped per run), a total at the run end, and a progress field', async (t) => {
  const { c, store, join, drain, report, config } = setup(t);
  const ids = join(2);
  const { run_id } = c.submit(JSON.stringify(config), 2, '');
  await settle();
  for (const id of ids) await drain(id);
  const progress: number[] = [];
  const watch = c.watch(run_id);
  const watching = (async () => {
    for await (const ev of watch) if (ev.kind === 'progress') progress.push(JSON.parse(ev.detail_json).rejectedMessages as number);
  })();
  const subjects = [`bnn.${run_id}.1.rs.4.0.0`, `bnn.${run_id}.1.rs.4.0.1`];
  for (let i = 0; i < 25; i++)
    c.reportMetrics(
      report({ worker_id: ids[i % 2]!, run_id, generation: 1, rank: i % 2, steps: i, rejected_messages: 3, rejected_subjects: subjects }),
    );
  c.reportMetrics(report({ worker_id: ids[0]!, run_id, generation: 1, rank: 0, steps: 30 }));
  c.reportMetrics(report({ worker_id: ids[0]!, run_id, generation: 1, rank: 0, done: true, steps: 30 }));
  await settle();
  watch.stop();
  await watching;
  const events = listEvents(store.db, run_id);
  const rejected = events.filter((e) => e.kind === 'messages-rejected');
  assert.equal(rejected.length, 20, 'at most 20 events per run');
  assert.deepEqual(rejected[0]!.detail, { workerId: ids[0], rank: 0, generation: 1, count: 3, subjects });
  assert.match(String(rejected.at(-1)!.detail?.note), /only counted/);
  assert.deepEqual(
    events.filter((e) => e.kind === 'messages-rejected-total').map((e) => e.detail),
    [{ count: 75 }],
  );
  assert.deepEqual(progress, [...Array(25).fill(3), 0]);
});

test('coordinator metrics - an epoch report with skipped steps (train.onNonFinite: skip) records a skipped event; a rank that diverged fails the run', async (t) => {
  const { c, store, join, report, config } = setup(t);
  const ids = join(2);
  const { run_id } = c.submit(JSON.stringify({ ...config, train: { ...config.train, onNonFinite: 'skip' } }), 2, '');
  await settle();
  const epoch = (n: number, skipped: number) =>
    report({
      worker_id: ids[0]!,
      run_id,
      generation: 1,
      rank: 0,
      epoch: n,
      train_loss: 1,
      train_acc: 0.5,
      lr: 1e-3,
      samples_per_s: 10,
      epoch_time_s: 1,
      steps: 5 * n,
      skipped_steps: skipped,
    });
  c.reportMetrics(epoch(1, 3));
  c.reportMetrics(epoch(2, 0));
  assert.deepEqual(
    listEvents(store.db, run_id)
      .filter((e) => e.kind === 'skipped')
      .map((e) => e.detail),
    [{ epoch: 1, steps: 3 }],
  );
  c.reportMetrics(
    report({ worker_id: ids[1]!, run_id, generation: 1, rank: 1, error: 'diverged: loss is NaN at epoch 3 step 12 (rank 1)' }),
  );
  assert.deepEqual(
    [c.info(run_id).status, c.info(run_id).error],
    ['FAILED', `rank 1 (${ids[1]}): diverged: loss is NaN at epoch 3 step 12 (rank 1)`],
  );
});

test('coordinator queue - runs wait with a reason, start by priority then FIFO on disjoint workers, and a queued run can be cancelled', async (t) => {
  const { c, store, join, drain, report, config } = setup(t);
  const json = JSON.stringify(config);
  const a = c.submit(json, 2, '');
  assert.equal(c.info(a.run_id).status, 'PENDING');
  assert.equal(c.info(a.run_id).waiting, 'waiting for 2 workers, 0 idle (0 registered)');
  assert.equal(c.info(a.run_id).queue_position, 1);
  const b = c.submit(json, 2, '');
  const urgent = c.submit(json, 1, '', 5);
  const cancelled = c.submit(json, 4, '');
  assert.equal(c.info(b.run_id).waiting, 'waiting for 2 workers, 0 idle (0 registered); 2 runs ahead in the queue');
  assert.deepEqual(
    [urgent, a, b, cancelled].map((r) => c.info(r.run_id).queue_position),
    [1, 2, 3, 4],
    'a higher priority goes first, then submission order',
  );
  // a queued run is cancelled without ever starting
  assert.equal(c.cancel(cancelled.run_id).status, 'CANCELLED');
  const ids = join(3);
  await settle();
  // 3 idle workers: the urgent run takes one, run a two; b waits for workers busy elsewhere
  assert.equal(c.info(urgent.run_id).status, 'RUNNING');
  assert.equal(c.info(a.run_id).status, 'RUNNING');
  assert.equal(c.info(b.run_id).status, 'PENDING');
  assert.equal(c.info(b.run_id).waiting, 'waiting for 2 workers, 0 idle');
  const snapshot = c.snapshot();
  const members = snapshot.runs.filter((r) => r.status === 'RUNNING').flatMap((r) => r.members);
  assert.equal(new Set(members).size, 3, 'runs at once never share a worker');
  assert.equal(snapshot.runs.find((r) => r.id === b.run_id)?.waiting, 'waiting for 2 workers, 0 idle');
  // the urgent run's worker finishes: b still needs 2, 1 is idle
  const urgentWorker = snapshot.runs.find((r) => r.id === urgent.run_id)!.members[0]!;
  c.reportMetrics(report({ worker_id: urgentWorker, run_id: urgent.run_id, generation: 1, rank: 0, done: true, steps: 3 }));
  assert.equal(c.info(urgent.run_id).status, 'COMPLETED');
  assert.equal(c.info(b.run_id).waiting, 'waiting for 2 workers, 1 idle');
  // run a ends: b starts on the same worker processes, without their restarting
  const [r0, r1] = snapshot.runs.find((r) => r.id === a.run_id)!.members;
  c.reportMetrics(report({ worker_id: r1!, run_id: a.run_id, generation: 1, rank: 1, done: true, steps: 3 }));
  c.reportMetrics(report({ worker_id: r0!, run_id: a.run_id, generation: 1, rank: 0, done: true, steps: 3 }));
  await settle();
  assert.equal(c.info(b.run_id).status, 'RUNNING');
  assert.equal(c.info(b.run_id).waiting, '');
  for (const id of ids) await drain(id);
  const kinds = listEvents(store.db, b.run_id).map((e) => e.kind);
  assert.ok(kinds.filter((k) => k === 'waiting').length >= 2, `waiting events recorded as the reason changed: ${kinds.join(' ')}`);
  const events = listEvents(store.db, cancelled.run_id).map((e) => e.kind);
  assert.ok(events.includes('cancelled') && !events.includes('started'), events.join(' '));
  assert.throws(() => c.submit(json, 1, '', 1.5), /priority: expected an integer/);
});

test('coordinator membership - a rank that finished and then left is neither suspect nor dead, and counts as alive in the last epoch line', async (t) => {
  const { c, store, join, drain, report, config } = setup(t);
  const ids = join(2);
  const { run_id } = c.submit(JSON.stringify(config), 2, '');
  await settle();
  for (const id of ids) await drain(id);
  const seen: Array<Record<string, unknown>> = [];
  const watch = c.watch('');
  void (async () => {
    for await (const ev of watch) seen.push({ kind: ev.kind, ...JSON.parse(ev.detail_json) });
  })();
  // rank 1 finishes and its process exits (its assignment stream closes)
  c.reportMetrics(report({ worker_id: ids[1]!, run_id, generation: 1, rank: 1, done: true, steps: 5 }));
  c.assignments(ids[1]!).stop();
  await settle();
  // rank 0's last epoch comes after rank 1's heartbeats stopped
  c.reportMetrics(report({ worker_id: ids[0]!, run_id, generation: 1, rank: 0, epoch: 1, test_loss: 0.5, test_acc: 0.8, steps: 5 }));
  c.reportMetrics(report({ worker_id: ids[0]!, run_id, generation: 1, rank: 0, done: true, steps: 5 }));
  await settle();
  watch.stop();
  assert.equal(c.info(run_id).status, 'COMPLETED');
  const epoch = seen.find((e) => e.kind === 'epoch');
  assert.deepEqual([epoch?.workersAlive, epoch?.worldSize], [2, 2], 'the finished rank is not counted lost');
  const states = seen.filter((e) => e.kind === 'worker' && e.workerId === ids[1]).map((e) => e.state);
  assert.deepEqual(states, ['left']);
  const kinds = (store.sqlite.prepare('SELECT kind FROM events WHERE run_id IS NULL').all() as Array<{ kind: string }>).map((e) => e.kind);
  assert.ok(kinds.includes('left') && !kinds.includes('dead'), kinds.join(' '));
});

test('coordinator checkpoints - ASSIGN names the store (the config over --checkpoint-store); ReportCheckpoint takes nats-os:// locations and applies retention', async (t) => {
  const { c, store, join, drain, config } = setup(t);
  const dir = await mkdtemp(joinPath(tmpdir(), 'bnn-coord-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ids = join(2);
  const plain = c.submit(JSON.stringify(config), 1, '');
  const onNats = c.submit(
    JSON.stringify({ ...config, checkpointStore: 'nats', checkpointReplicas: 3, train: { ...config.train, keepCheckpoints: 2 } }),
    1,
    '',
  );
  await settle();
  const first = (await drain(ids[0]!)).find((x) => x.kind === 'ASSIGN')!;
  const second = (await drain(ids[1]!)).find((x) => x.kind === 'ASSIGN')!;
  assert.deepEqual([first.run_id, first.checkpoint_store, first.checkpoint_replicas], [plain.run_id, 'local', 0]);
  assert.deepEqual([second.run_id, second.checkpoint_store, second.checkpoint_replicas], [onNats.run_id, 'nats', 3]);

  const base = { worker_id: ids[1]!, run_id: onNats.run_id, generation: 1, rank: 0, epoch: 0, bytes: 10 };
  c.reportCheckpoint({
    ...base,
    step: 4,
    path: `nats-os://bnn-checkpoints/${onNats.run_id}/step-00000004.safetensors`,
    sha256: 'a'.repeat(64),
  });
  assert.throws(
    () => c.reportCheckpoint({ ...base, step: 5, path: 'relative/x.safetensors', sha256: 'a'.repeat(64) }),
    /absolute path or a nats-os/,
  );
  // local files of the plain run: keep 3 (the default) of 5
  const files: string[] = [];
  for (const step of [1, 2, 3, 4, 5]) {
    const f = joinPath(dir, `step-${step}.safetensors`);
    const { sha256, bytes } = await writeSafetensors(f, { x: { dtype: 'F32', shape: [1], data: Float32Array.of(step) } });
    c.reportCheckpoint({ worker_id: ids[0]!, run_id: plain.run_id, generation: 1, rank: 0, epoch: 0, step, path: f, sha256, bytes });
    files.push(f);
  }
  await c.settled();
  const { listCheckpoints } = await import('../src/store/index.js');
  const { existsSync } = await import('node:fs');
  assert.deepEqual(
    listCheckpoints(store.db, plain.run_id).map((r) => r.step),
    [3, 4, 5],
  );
  assert.deepEqual(
    files.map((f) => existsSync(f)),
    [false, false, true, true, true],
  );
  const deleted = listEvents(store.db, plain.run_id).filter((e) => e.kind === 'checkpoints-deleted');
  assert.ok(deleted.length >= 1 && deleted.every((e) => Number(e.detail?.bytesFreed) > 0));
});

test("coordinator - rank 0's report of the epoch it was finishing when the run was cancelled is still recorded; other late reports are not", async (t) => {
  const { c, store, join, drain, report, config } = setup(t);
  const ids = join(2);
  const { run_id } = c.submit(JSON.stringify(config), 2, '');
  await settle();
  for (const id of ids) await drain(id);
  c.cancel(run_id);
  // rank 1's report, and rank 0's of an older generation, are dropped; rank 0's epoch is kept
  c.reportMetrics(report({ worker_id: ids[1]!, run_id, generation: 1, rank: 1, epoch: 3, test_loss: 0.4, test_acc: 0.7 }));
  c.reportMetrics(report({ worker_id: ids[0]!, run_id, generation: 0, rank: 0, epoch: 2, test_loss: 0.4, test_acc: 0.7 }));
  c.reportMetrics(report({ worker_id: ids[0]!, run_id, generation: 1, rank: 0, epoch: 3, test_loss: 0.5, test_acc: 0.8 }));
  const { listEpochMetrics } = await import('../src/store/index.js');
  assert.deepEqual(
    listEpochMetrics(store.db, run_id).map((e) => [e.epoch, e.testAcc]),
    [[3, 0.8]],
  );
});
