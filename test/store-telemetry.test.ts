import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { defaultRunConfig } from '../src/config/schema.js';
import {
  addEnergySample,
  addEnergySamples,
  addEpochMetrics,
  addStepMetrics,
  createRun,
  currentMembers,
  endGeneration,
  energyByRun,
  energyPerEpoch,
  energyPerSample,
  joinRun,
  latestHardware,
  leaveRun,
  listEnergySamples,
  listEvents,
  listHardware,
  listMembers,
  listStepMetrics,
  listWorkers,
  openStore,
  recordHardware,
  RunNotFoundError,
  touchWorker,
  upsertWorker,
  WorkerNotFoundError,
  type HardwareColumns,
  type StoreDb,
} from '../src/store/index.js';
import { tmpDir } from './helpers/tmp.js';

async function fresh(t: TestContext): Promise<StoreDb> {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('bnn.db'));
  t.after(() => store.close());
  return store.db;
}

const epochRow = (epoch: number, samplesPerS: number, epochTimeS: number) => ({
  epoch,
  trainLoss: 0.5,
  trainAcc: 0.8,
  testLoss: null,
  testAcc: null,
  lr: 1e-3,
  samplesPerS,
  epochTimeS,
});

const close = (a: number | null | undefined, b: number) =>
  assert.ok(a !== null && a !== undefined && Math.abs(a - b) < 1e-9, `${a} vs ${b}`);

test('store energy - summaries per run, per epoch and per sample, by source and over workers', async (t) => {
  const db = await fresh(t);
  const run = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  addEpochMetrics(db, run.id, epochRow(1, 1000, 6)); // 6000 samples
  addEpochMetrics(db, run.id, epochRow(2, 2000, 3)); // 6000 samples
  upsertWorker(db, { id: 'w0', hostname: 'gpu-a' });
  upsertWorker(db, { id: 'w1', hostname: 'gpu-b' });
  addEnergySamples(db, [
    { runId: run.id, workerId: 'w0', epoch: 1, joules: 60, source: 'rapl', watts: 10 },
    { runId: run.id, workerId: 'w0', epoch: 1, joules: 100, source: 'nvml', watts: 16.7 },
    { runId: run.id, workerId: 'w1', epoch: 1, joules: 20, source: 'nvml' },
    { runId: run.id, workerId: 'w0', epoch: 2, joules: 30, source: 'rapl' },
    { runId: run.id, workerId: 'w1', epoch: 2, joules: 60, source: 'nvml' },
    { runId: run.id, joules: 10, source: 'rapl', detail: { phase: 'final eval' } },
  ]);

  const total = energyByRun(db, run.id);
  close(total.joules, 280);
  assert.deepEqual(total.bySource, { nvml: 180, rapl: 100 });
  assert.equal(total.source, 'nvml+rapl');
  assert.equal(total.estimated, false);
  assert.equal(total.sampleRows, 6);

  const perEpoch = energyPerEpoch(db, run.id);
  assert.deepEqual(
    perEpoch.map((e) => [e.epoch, e.joules, e.samples, e.source]),
    [
      [1, 180, 6000, 'nvml+rapl'],
      [2, 90, 6000, 'nvml+rapl'],
    ],
  );
  close(perEpoch[0]!.joulesPerSample, 0.03);
  close(perEpoch[1]!.joulesPerSample, 0.015);

  const perSample = energyPerSample(db, run.id)!;
  assert.equal(perSample.samples, 12000);
  close(perSample.joulesPerSample, 280 / 12000);
  close(energyPerSample(db, run.id, { samples: 1000 })!.joulesPerSample, 0.28);
  assert.equal(listEnergySamples(db, run.id).at(-1)!.detail!.phase, 'final eval');
});

test('store energy - an estimate is labelled as one; a run without energy or samples says so', async (t) => {
  const db = await fresh(t);
  const est = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  addEnergySample(db, { runId: est.id, epoch: 1, joules: 42, source: 'estimate', detail: { wattsPerCore: 15 } });
  const e = energyByRun(db, est.id);
  assert.equal(e.source, 'estimate');
  assert.equal(e.estimated, true);
  assert.equal(energyPerEpoch(db, est.id)[0]!.source, 'estimate');
  assert.equal(energyPerEpoch(db, est.id)[0]!.samples, null, 'no epoch metrics: sample count unknown');
  assert.equal(energyPerSample(db, est.id), undefined);

  const none = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  assert.deepEqual(energyByRun(db, none.id), { runId: none.id, joules: 0, bySource: {}, source: 'none', estimated: false, sampleRows: 0 });
  assert.deepEqual(energyPerEpoch(db, none.id), []);
});

test('store energy - bad samples are refused before writing; unknown run or worker named', async (t) => {
  const db = await fresh(t);
  const run = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  assert.throws(() => addEnergySample(db, { runId: run.id, joules: -1, source: 'rapl' }), RangeError);
  assert.throws(() => addEnergySample(db, { runId: run.id, joules: Number.NaN, source: 'rapl' }), RangeError);
  assert.throws(() => addEnergySample(db, { runId: run.id, joules: 1, source: 'guess' as never }), /one of nvml, rapl, estimate/);
  assert.throws(() => addEnergySample(db, { runId: 'r-nope', joules: 1, source: 'rapl' }), RunNotFoundError);
  assert.throws(() => addEnergySample(db, { runId: run.id, workerId: 'w-ghost', joules: 1, source: 'rapl' }), WorkerNotFoundError);
  // All or none.
  assert.throws(
    () =>
      addEnergySamples(db, [
        { runId: run.id, joules: 1, source: 'rapl' },
        { runId: 'r-nope', joules: 1, source: 'rapl' },
      ]),
    RunNotFoundError,
  );
  assert.deepEqual(listEnergySamples(db, run.id), []);
});

const HW: HardwareColumns = {
  cpuModel: 'Intel(R) Xeon(R) Platinum 8480+',
  cpuCores: 56,
  cpuThreads: 112,
  isaFlags: { avx2: true, avx512f: true, avx512_vpopcntdq: true },
  memoryBytes: 512 * 2 ** 30,
  gpuModel: 'NVIDIA H100 80GB HBM3',
  gpuDriver: '550.54.15',
  gpuMemoryBytes: 81559 * 2 ** 20,
  gpuCount: 8,
  os: 'linux 6.8.0 x64',
  nodeVersion: '20.19.0',
  packageVersions: { 'bnn-cluster': '0.1.0', '@tensorflow/tfjs': '4.22.0' },
};

test('store hardware - snapshots for the embedded trainer and for workers, JSON columns queryable', async (t) => {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('bnn.db'));
  t.after(() => store.close());
  const { db } = store;
  const run = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  const embedded = recordHardware(db, { hardware: HW, runId: run.id, at: new Date('2025-01-01T00:00:00Z') });
  assert.equal(embedded.workerId, null);
  assert.deepEqual(embedded.isaFlags, HW.isaFlags);
  upsertWorker(db, { id: 'w0', hostname: 'gpu-a' });
  recordHardware(db, { hardware: { ...HW, gpuCount: 4 }, workerId: 'w0', at: new Date('2025-01-02T00:00:00Z') });
  assert.equal(listHardware(db, { runId: run.id }).length, 1);
  assert.equal(listHardware(db, { workerId: null })[0]!.id, embedded.id);
  assert.equal(latestHardware(db)!.gpuCount, 4);
  assert.equal(latestHardware(db, { workerId: 'w0' })!.workerId, 'w0');
  // The file is the interface: plain SQL reaches into the JSON.
  const row = store.sqlite
    .prepare(
      "SELECT json_extract(isa_flags, '$.avx512_vpopcntdq') AS pop, json_extract(package_versions, '$.\"@tensorflow/tfjs\"') AS tfjs FROM hardware_snapshots WHERE run_id = ?",
    )
    .get(run.id) as { pop: number; tfjs: string };
  assert.deepEqual(row, { pop: 1, tfjs: '4.22.0' });
  assert.throws(() => recordHardware(db, { hardware: HW, runId: 'r-nope' }), RunNotFoundError);
  assert.throws(() => recordHardware(db, { hardware: HW, workerId: 'w9' }), WorkerNotFoundError);
});

test('store members - workers join generations by rank, leave or die, with events', async (t) => {
  const db = await fresh(t);
  const run = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  const first = upsertWorker(db, { id: 'w0', hostname: 'a', at: new Date('2025-01-01T00:00:00Z') });
  upsertWorker(db, { id: 'w1', hostname: 'b' });
  const again = upsertWorker(db, { id: 'w0', hostname: 'a2', at: new Date('2025-01-03T00:00:00Z') });
  assert.equal(again.firstSeen, first.firstSeen);
  assert.equal(again.lastSeen, '2025-01-03T00:00:00.000Z');
  assert.equal(touchWorker(db, 'w1', new Date('2025-01-04T00:00:00Z')).lastSeen, '2025-01-04T00:00:00.000Z');
  assert.throws(() => touchWorker(db, 'w9'), WorkerNotFoundError);
  assert.deepEqual(
    listWorkers(db).map((w) => [w.id, w.hostname]),
    [
      ['w0', 'a2'],
      ['w1', 'b'],
    ],
  );

  joinRun(db, { runId: run.id, generation: 0, workerId: 'w0', rank: 0, worldSize: 2 });
  joinRun(db, { runId: run.id, generation: 0, workerId: 'w1', rank: 1, worldSize: 2 });
  assert.throws(() => joinRun(db, { runId: run.id, generation: 0, workerId: 'w1', rank: 1, worldSize: 2 }), /UNIQUE/);
  assert.throws(() => joinRun(db, { runId: run.id, generation: 0, workerId: 'w0', rank: 2, worldSize: 2 }), /CHECK|UNIQUE/);
  assert.throws(() => joinRun(db, { runId: run.id, generation: 5, workerId: 'w7', rank: 0, worldSize: 1 }), WorkerNotFoundError);

  assert.equal(leaveRun(db, { runId: run.id, generation: 0, workerId: 'w1', reason: 'dead' })!.reason, 'dead');
  assert.equal(leaveRun(db, { runId: run.id, generation: 0, workerId: 'w1', reason: 'dead' }), undefined, 'already gone');
  assert.deepEqual(
    currentMembers(db, run.id).map((m) => m.workerId),
    ['w0'],
  );
  assert.equal(endGeneration(db, run.id, 0), 1);
  joinRun(db, { runId: run.id, generation: 1, workerId: 'w0', rank: 0, worldSize: 1 });
  assert.deepEqual(
    currentMembers(db, run.id).map((m) => [m.generation, m.workerId, m.worldSize]),
    [[1, 'w0', 1]],
  );
  assert.deepEqual(
    listMembers(db, run.id).map((m) => [m.generation, m.rank, m.reason]),
    [
      [0, 0, 'generation-ended'],
      [0, 1, 'dead'],
      [1, 0, null],
    ],
  );
  assert.deepEqual(
    listEvents(db, run.id).map((e) => e.kind),
    ['created', 'joined', 'joined', 'dead', 'joined'],
  );
});

test('store steps - step metrics in order, rewritten on conflict, ranges', async (t) => {
  const db = await fresh(t);
  const run = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  const step = (s: number, loss: number) => ({ step: s, epoch: 1, loss, accuracy: 0.5, lr: 1e-3, samplesPerS: 100 });
  addStepMetrics(db, run.id, [step(3, 0.3), step(1, 0.9), step(2, 0.6)]);
  addStepMetrics(db, run.id, step(2, 0.55));
  assert.deepEqual(
    listStepMetrics(db, run.id).map((r) => [r.step, r.loss]),
    [
      [1, 0.9],
      [2, 0.55],
      [3, 0.3],
    ],
  );
  assert.deepEqual(
    listStepMetrics(db, run.id, { fromStep: 2, toStep: 2 }).map((r) => r.step),
    [2],
  );
  assert.throws(() => addStepMetrics(db, 'r-nope', step(1, 1)), RunNotFoundError);
});
