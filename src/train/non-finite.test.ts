// The loop's non-finite guard, in this process: a step whose loss or gradient is NaN or ±Inf
// ends the run as diverged (`train.onNonFinite: fail`, the default) or is skipped and counted
// (`skip`): no update, moments and BatchNorm statistics as they were. Two ranks over the
// in-memory loopback decide alike, whichever rank met the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ElasticGroup, LoopbackHub, newRunKey, type GroupAssignment } from '../collective/index.js';
import { loopbackGroupOptions } from '../collective/testing.js';
import { parseRunConfig, type RunConfig } from '../config/index.js';
import { initEngine } from '../engine/select.js';
import { soloCollective, type TrainingCollective } from './collective.js';
import { DivergedError } from './errors.js';
import { flatLayout } from './gradients.js';
import { groupCollective } from './group-collective.js';
import { runTrainingLoop } from './loop.js';
import { prepareTraining, type TrainingSetup } from './setup.js';
import type { EpochReport, TrainingSink } from './sink.js';

await initEngine({ backend: 'cpu', threads: 1 });

const configWith = (onNonFinite?: 'fail' | 'skip'): RunConfig =>
  parseRunConfig(
    {
      name: 'non-finite',
      seed: 3,
      dataset: { name: 'synthetic', normalize: 'none', synthetic: { trainSize: 192, testSize: 64, shape: [6, 6, 1], numClasses: 4 } },
      model: { arch: 'mlp', hidden: [24, 16], precision: 'binary' },
      train: { epochs: 2, batchSize: 32, ...(onNonFinite ? { onNonFinite } : {}) },
      engine: { backend: 'cpu', threads: 1 },
    },
    { source: 'test' },
  );

type Poison = 'loss' | 'gradient' | 'loss 1e5';

/** `c`, but the loss or every gradient this rank hands to the reduction of the listed (0-based) steps is NaN / +Inf at element 0. */
function poisoning(c: TrainingCollective, poison: ReadonlyMap<number, Poison>): TrainingCollective {
  return {
    ...c,
    beginStep: (step, scale) => {
      const r = c.beginStep(step, scale);
      const kind = poison.get(step);
      if (!kind) return r;
      return {
        ...(r.hook ? { hook: r.hook } : {}),
        finish: (grads, metrics) => {
          if (kind !== 'gradient') return r.finish(grads, { ...metrics, lossSum: kind === 'loss' ? Number.NaN : 1e5 });
          // the cpu backend hands out its own arrays: poisoned in place
          for (const g of Object.values(grads ?? {})) (g.dataSync() as Float32Array)[0] = Infinity;
          return r.finish(grads, metrics);
        },
      };
    },
  };
}

/** Weights, moments and BatchNorm statistics, as plain arrays. */
function snapshot(setup: TrainingSetup): number[][] {
  const st = setup.optimizer.state();
  return [
    ...setup.model.params().flatMap((p) => [Array.from(p.variable.dataSync()), Array.from(st.m[p.name]!), Array.from(st.v[p.name]!)]),
    ...setup.model.buffers().map((b) => Array.from(b.values)),
  ];
}

/** Records the epochs, log lines and the state after each step (index: steps done). */
function recorder(setup: TrainingSetup) {
  const epochs: EpochReport[] = [];
  const lines: string[] = [];
  const states: number[][][] = [snapshot(setup)];
  const sink: TrainingSink = {
    step: (s) => {
      states[s.step] = snapshot(setup);
    },
    epoch: async (e) => {
      epochs.push(e);
    },
    checkpoint: async () => undefined,
    log: (line) => lines.push(line),
  };
  return { epochs, lines, states, sink };
}

async function solo(t: { after(fn: () => Promise<void>): void }, onNonFinite: 'fail' | 'skip' | undefined, poison: Map<number, Poison>) {
  const dir = await mkdtemp(path.join(tmpdir(), 'bnn-nonfinite-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const setup = await prepareTraining(configWith(onNonFinite));
  const rec = recorder(setup);
  const run = runTrainingLoop(setup, poisoning(soloCollective(), poison), rec.sink, {
    runId: 'r-nonfinite',
    checkpointDir: dir,
    checkStop: () => undefined,
  }).finally(() => setup.model.dispose());
  return { ...rec, run, setup };
}

test('non-finite - a NaN loss or an Inf gradient fails the run as diverged (the default), naming what, epoch and step', async (t) => {
  for (const [onNonFinite, poison, message] of [
    [undefined, new Map([[8, 'loss']]), 'diverged: loss is NaN at epoch 2 step 9'],
    ['fail', new Map([[2, 'gradient']]), /^diverged: gradient is Inf at epoch 1 step 3 \(\S+, element 0\)$/],
  ] as const) {
    const { run, epochs } = await solo(t, onNonFinite, new Map(poison as Map<number, Poison>));
    await assert.rejects(run, (e: unknown) => {
      assert.ok(e instanceof DivergedError, String(e));
      assert.equal((e as DivergedError & { userFacing: true }).userFacing, true, 'a user error: no stack');
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    });
    assert.ok(epochs.every((e) => Number.isFinite(e.trainLoss)));
  }
});

test('non-finite - with onNonFinite: skip a step with a NaN loss or Inf gradient changes nothing and is counted in its epoch', async (t) => {
  const poison = new Map<number, Poison>([
    [1, 'loss'],
    [2, 'gradient'],
    [9, 'loss'],
  ]);
  const { run, epochs, lines, states } = await solo(t, 'skip', poison);
  assert.deepEqual(await run, { steps: 12 });
  assert.deepEqual(
    epochs.map((e) => e.skippedSteps),
    [2, 1],
  );
  assert.ok(epochs.every((e) => Number.isFinite(e.trainLoss) && e.test && Number.isFinite(e.test.loss)));
  for (let done = 1; done <= 12; done++) {
    const skipped = poison.has(done - 1);
    // skipped: weights, moments and BatchNorm statistics exactly as before the step
    assert.equal(JSON.stringify(states[done]) === JSON.stringify(states[done - 1]), skipped, `step ${done}`);
  }
  assert.deepEqual(
    lines.filter((l) => l.includes('skipped')).map((l) => l.replace(/ \(.*\)$/, '')),
    ['step 2: skipped: loss is NaN', 'step 3: skipped: gradient is Inf', 'step 10: skipped: loss is NaN'],
  );
});

test('non-finite - an epoch whose every step was skipped ends the run as diverged (nothing NaN is reported)', async (t) => {
  const { run, epochs } = await solo(t, 'skip', new Map([0, 1, 2, 3, 4, 5].map((s) => [s, 'loss'])));
  await assert.rejects(run, {
    name: 'DivergedError',
    message: 'diverged: every step of the epoch was skipped (train.onNonFinite: skip) at epoch 1 step 6',
  });
  assert.deepEqual(epochs, []);
});

/** Two ranks over the loopback; rank 1's loss of (0-based) step 4 is NaN (or `poison`). */
async function twoRanks(onNonFinite: 'fail' | 'skip', compression: 'none' | 'fp16' = 'none', poison: Poison = 'loss') {
  const hub = new LoopbackHub({ maxPayload: 64 * 1024, shuffleSeed: 5 });
  const runKey = newRunKey();
  const assign = (rank: number): GroupAssignment => ({
    runId: 'r-nf',
    rank,
    worldSize: 2,
    generation: 1,
    url: 'loopback',
    runKey,
    resync: false,
  });
  const groups = [0, 1].map((rank) => new ElasticGroup(assign(rank), loopbackGroupOptions(hub, `rank${rank}`, compression)));
  const dir = await mkdtemp(path.join(tmpdir(), 'bnn-nonfinite-'));
  const setups = await Promise.all(groups.map(() => prepareTraining(configWith(onNonFinite))));
  const recs = setups.map(recorder);
  try {
    const results = await Promise.allSettled(
      setups.map((setup, rank) => {
        const c = groupCollective(groups[rank]!, flatLayout(setup.model.params()));
        return runTrainingLoop(setup, rank === 1 ? poisoning(c, new Map([[4, poison]])) : c, recs[rank]!.sink, {
          runId: 'r-nf',
          checkpointDir: path.join(dir, `rank${rank}`),
          checkStop: () => undefined,
        });
      }),
    );
    // weights and moments (BatchNorm statistics are each rank's own)
    return { results, recs, final: setups.map((s) => snapshot(s).slice(0, 3 * s.model.params().length)) };
  } finally {
    await Promise.all(groups.map((g) => g.close()));
    setups.forEach((s) => s.model.dispose());
    await rm(dir, { recursive: true, force: true });
  }
}

test('non-finite - two ranks: one rank meets a NaN loss; both fail alike, or with skip both skip the step and end equal', async () => {
  const failed = await twoRanks('fail');
  assert.deepEqual(
    failed.results.map((r) => (r.status === 'rejected' ? `${(r.reason as Error).name}: ${(r.reason as Error).message}` : 'fulfilled')),
    [
      'DivergedError: diverged: a loss or gradient is NaN or Inf at epoch 1 step 5 (1 other rank(s))',
      'DivergedError: diverged: loss is NaN at epoch 1 step 5 (rank 1)',
    ],
  );
  const skipped = await twoRanks('skip');
  assert.deepEqual(
    skipped.results.map((r) => r.status),
    ['fulfilled', 'fulfilled'],
  );
  assert.deepEqual(
    skipped.recs[0]!.epochs.map((e) => e.skippedSteps),
    [1, 0],
  );
  assert.deepEqual(skipped.final[0], skipped.final[1], 'weights and moments equal on both ranks');
  for (const rec of skipped.recs) assert.equal(JSON.stringify(rec.states[5]), JSON.stringify(rec.states[4]), 'step 5 changed nothing');
});

test('non-finite - two ranks, fp16: a loss sum beyond what fp16 carries is never sent; both ranks fail alike, no rank is blamed', async () => {
  const failed = await twoRanks('fail', 'fp16', 'loss 1e5');
  assert.deepEqual(
    failed.results.map((r) => (r.status === 'rejected' ? `${(r.reason as Error).name}: ${(r.reason as Error).message}` : 'fulfilled')),
    [
      'DivergedError: diverged: a loss or gradient is NaN or Inf at epoch 1 step 5 (1 other rank(s))',
      'DivergedError: diverged: loss sum is 100000 (the wire format carries |x| < 65520) at epoch 1 step 5 (rank 1)',
    ],
  );
});
