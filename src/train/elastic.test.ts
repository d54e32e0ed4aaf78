// The one training loop with two ranks in this process over the in-memory loopback transport:
// a membership change in the middle of a step (after the kernels' buckets went out from the
// backward pass, before the rest) makes both ranks abandon it, put back the BatchNorm statistics
// its forward pass moved, join the next generation, take rank 0's state and redo the step. The
// result must equal an uninterrupted run bit for bit (weights, moments, buffers, epoch metrics).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ElasticGroup, LoopbackHub, MembershipChangedError, newRunKey, type GroupAssignment } from '../collective/index.js';
import { loopbackGroupOptions } from '../collective/testing.js';
import { parseRunConfig } from '../config/index.js';
import { initEngine } from '../engine/select.js';
import { soloCollective, type TrainingCollective } from './collective.js';
import { TrainingState } from './elastic-state.js';
import { flatLayout } from './gradients.js';
import { groupCollective, type ByteGroup } from './group-collective.js';
import { runTrainingLoop } from './loop.js';
import { prepareTraining, type TrainingSetup } from './setup.js';
import type { EpochReport, TrainingSink } from './sink.js';

await initEngine({ backend: 'cpu', threads: 1 });

const config = parseRunConfig(
  {
    name: 'elastic',
    seed: 7,
    dataset: { name: 'synthetic', normalize: 'none', synthetic: { trainSize: 192, testSize: 64, shape: [6, 6, 1], numClasses: 4 } },
    model: { arch: 'mlp', hidden: [24, 16], precision: 'binary' },
    train: { epochs: 2, batchSize: 32 },
    engine: { backend: 'cpu', threads: 1 },
  },
  { source: 'test' },
);

/** A rank's training state as plain arrays: what every rank shares (weights, moments, step) and its own BatchNorm statistics. */
function snapshot(setup: TrainingSetup): { shared: number[][]; buffers: number[][] } {
  const st = setup.optimizer.state();
  return {
    shared: [
      ...setup.model.params().flatMap((p) => [Array.from(p.variable.dataSync()), Array.from(st.m[p.name]!), Array.from(st.v[p.name]!)]),
      [st.step],
    ],
    // running statistics are each rank's own (its shard's), until a re-formed group takes rank 0's
    buffers: setup.model.buffers().map((b) => Array.from(b.values)),
  };
}

const sink = (epochs: EpochReport[], lines: string[]): TrainingSink => ({
  step: () => undefined,
  epoch: async (e) => {
    epochs.push(e);
  },
  checkpoint: async () => undefined,
  log: (line) => lines.push(line),
});

/** Rank 0's group, delegating, that runs `inject` just before it finishes step `at` (its kernels' buckets are out, the rest not). */
function injecting(g: ElasticGroup, at: number, inject: () => void): ByteGroup {
  let fired = false;
  return {
    get assignment() {
      return g.assignment;
    },
    get compression() {
      return g.compression;
    },
    join: () => g.join(),
    checkMembership: () => g.checkMembership(),
    beginAllreduceSum: (vec, step) => {
      const inner = g.beginAllreduceSum(vec, step);
      return {
        submit: (b) => inner.submit(b),
        finish: () => {
          if (step === at && !fired) {
            fired = true;
            inject();
          }
          return inner.finish();
        },
      };
    },
    broadcastFromRank0: (v) => g.broadcastFromRank0(v),
    gatherFromEveryRank: (v) => g.gatherFromEveryRank(v),
    errorFeedback: () => g.errorFeedback(),
    restoreErrorFeedback: (w, o) => g.restoreErrorFeedback(w, o),
    regroup: (err) => g.regroup(err),
  };
}

/** Trains two ranks to the end; `changeAt`: the step during which a second generation is offered to both. */
async function twoRanks(dir: string, changeAt: number | null) {
  const hub = new LoopbackHub({ maxPayload: 64 * 1024, shuffleSeed: 5 });
  const runKey = newRunKey();
  const assign = (rank: number, generation: number, resync: boolean): GroupAssignment => ({
    runId: 'r-elastic',
    rank,
    worldSize: 2,
    generation,
    url: 'loopback',
    runKey,
    resync,
  });
  const groups = [0, 1].map((rank) => new ElasticGroup(assign(rank, 1, false), loopbackGroupOptions(hub, `rank${rank}`)));
  const offerNext = () => groups.forEach((g, rank) => g.offer(assign(rank, 2, true)));
  const setups = await Promise.all(groups.map(() => prepareTraining(config)));
  const epochs: EpochReport[][] = [[], []];
  const lines: string[][] = [[], []];
  try {
    await Promise.all(
      setups.map((setup, rank) => {
        const g: ByteGroup = rank === 0 && changeAt !== null ? injecting(groups[0]!, changeAt, offerNext) : groups[rank]!;
        return runTrainingLoop(setup, groupCollective(g, flatLayout(setup.model.params())), sink(epochs[rank]!, lines[rank]!), {
          runId: 'r-elastic',
          checkpointDir: path.join(dir, `rank${rank}`),
          checkStop: () => undefined,
        });
      }),
    );
    return { states: setups.map(snapshot), epochs: epochs[0]!, lines, generations: groups.map((g) => g.assignment.generation) };
  } finally {
    await Promise.all(groups.map((g) => g.close()));
    setups.forEach((s) => s.model.dispose());
  }
}

test("elastic - a membership change mid-step: both ranks restore, re-form, take rank 0's state and redo the step; the result equals an uninterrupted run", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bnn-elastic-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const plain = await twoRanks(path.join(dir, 'plain'), null);
  const changed = await twoRanks(path.join(dir, 'changed'), 3);
  assert.deepEqual(changed.generations, [2, 2], 'both ranks moved to generation 2');
  for (const rank of [0, 1]) {
    assert.ok(
      changed.lines[rank]!.some((l) => /^step 4: group membership changed \(now generation 2\); re-forming the group$/.test(l)),
      changed.lines[rank]!.join('\n'),
    );
  }
  assert.deepEqual(plain.states[1]!.shared, plain.states[0]!.shared, 'both ranks hold the same weights');
  assert.deepEqual(changed.states[1]!.shared, changed.states[0]!.shared, 'both ranks hold the same weights after the re-form');
  assert.deepEqual(changed.states[0], plain.states[0], 'rank 0 ends where the uninterrupted run does, BatchNorm statistics included');
  assert.deepEqual(
    changed.epochs,
    plain.epochs.map((e, i) => ({ ...e, epochTimeS: changed.epochs[i]!.epochTimeS, samplesPerS: changed.epochs[i]!.samplesPerS })),
    'the epoch sums count the redone step once',
  );
  assert.equal(plain.epochs.length, 2);
});

test('elastic - TrainingState: restore puts back the BatchNorm statistics and epoch sums of the last save; commit checks membership', async () => {
  const setup = await prepareTraining(config);
  try {
    let pending = false;
    const collective: TrainingCollective = {
      ...soloCollective(),
      checkMembership: () => {
        if (pending) throw new MembershipChangedError(2);
      },
    };
    const state = new TrainingState(setup.model, setup.optimizer, collective);
    const buffers = setup.model.buffers();
    assert.ok(buffers.length > 0, 'the model has BatchNorm statistics');
    state.progress = { lossSum: 1.5, correct: 3, seen: 32 };
    state.commit();
    const before = buffers.map((b) => Float32Array.from(b.values));
    // a forward pass in training mode moves the running statistics
    tf.tidy(() => setup.model.forward(tf.randomNormal([8, 6, 6, 1], 0, 1, 'float32', 1), true));
    state.progress.seen += 32;
    assert.notDeepEqual(
      buffers.map((b) => Array.from(b.values)),
      before.map((b) => Array.from(b)),
    );
    state.restore();
    assert.deepEqual(
      buffers.map((b) => Array.from(b.values)),
      before.map((b) => Array.from(b)),
    );
    assert.deepEqual(state.progress, { lossSum: 1.5, correct: 3, seen: 32 });
    pending = true;
    assert.throws(() => state.commit(), MembershipChangedError);
  } finally {
    setup.model.dispose();
  }
});
