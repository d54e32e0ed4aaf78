import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { readSafetensors } from '../src/checkpoint/index.js';
import { tmpDir, type TmpDir } from './helpers/tmp.js';
import { maxRelativeDiff, readWeights, writeTinyConfig, type WeightsDump } from './helpers/cluster.js';

// 2 epochs × 10 steps of a global batch of 32 (the last one 22): uneven shards for N = 3.
// A large Adam epsilon makes the update scale with the gradient (≈ lr·g), so a mis-weighted or
// mis-scaled all-reduce changes the weights instead of being normalised away.
const SCALE_SENSITIVE = { optimizerEpsilon: 1 };

async function launch(dir: TmpDir, workers: number, config: string): Promise<WeightsDump[]> {
  const dump = dir.join(`dump-${workers}`);
  const r = await runCli(['launch', '--local', String(workers), config, '--quiet'], {
    cwd: dir.path,
    timeoutMs: 30_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dump },
  });
  assert.equal(r.code, 0, `N=${workers}: ${r.stdout}\n${r.stderr}`);
  return Array.from({ length: workers }, (_, rank) => readWeights(dump, rank));
}

test('cluster data-parallel - one worker ends with exactly the weights of bnn train', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path, SCALE_SENSITIVE);
  const [single] = await launch(dir, 1, config);
  assert.equal(single!.steps, 20);
  const train = await runCli(['train', config, '--json'], { cwd: dir.path, timeoutMs: 30_000 });
  assert.equal(train.code, 0, train.stderr);
  const { runId } = JSON.parse(train.stdout.trim().split('\n').at(-1)!) as { runId: string };
  const ckpt = await readSafetensors(dir.join('ckpt', runId, 'epoch-0002.safetensors'));
  const trained: WeightsDump = { runId, steps: 20, worldSize: 1, params: {} };
  for (const name of Object.keys(single!.params)) trained.params[name] = Array.from(ckpt.tensors[`param/${name}`]!.data as Float32Array);
  assert.equal(maxRelativeDiff(single!, trained), 0);
});

test('cluster data-parallel - N = 2 and N = 3 workers end with the weights of one worker on the same global batch', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path, SCALE_SENSITIVE);
  const [single] = await launch(dir, 1, config);
  for (const n of [2, 3]) {
    const ranks = await launch(dir, n, config);
    for (const r of ranks) {
      assert.equal(r.steps, 20);
      // Every rank applies the same all-reduced gradient: bit-identical replicas.
      assert.deepEqual(r.params, ranks[0]!.params, `N=${n}: rank replicas differ`);
    }
    const rel = maxRelativeDiff(ranks[0]!, single!);
    assert.ok(rel <= 1e-5, `N=${n}: max relative difference to one worker ${rel}`);
  }
});
