import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter } from 'node:path';
import { test } from 'node:test';
import { selectGpu } from '../src/cli/commands/worker.js';
import { workerGpuArgs } from '../src/launch/local-cluster.js';
import { listHardware, openStore } from '../src/store/index.js';
import { runCli } from './helpers/cli.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { bnn } from './helpers/in-process-cli.js';
import { tmpDir } from './helpers/tmp.js';

test('gpus - worker i gets gpus[i mod length]; --gpu sets CUDA_VISIBLE_DEVICES and PCI bus order', () => {
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => workerGpuArgs([0, 1], i)),
    [
      ['--gpu', '0'],
      ['--gpu', '1'],
      ['--gpu', '0'],
      ['--gpu', '1'],
    ],
  );
  assert.deepEqual(workerGpuArgs(undefined, 3), []);
  const env: NodeJS.ProcessEnv = {};
  selectGpu(2, env);
  assert.deepEqual(env, { CUDA_VISIBLE_DEVICES: '2', CUDA_DEVICE_ORDER: 'PCI_BUS_ID' });
});

test('gpus - bad --gpu and --gpus are refused with exit 2, naming the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['worker', '--coordinator', '127.0.0.1:1', '--token', 't', '--gpu', '-1'], /--gpu: '-1' is not valid; expected a GPU index/],
    [['worker', '--coordinator', '127.0.0.1:1', '--token', 't', '--gpu', '1.5'], /--gpu: '1.5' is not valid/],
    [['worker', '--coordinator', '127.0.0.1:1', '--token', 't', '--gpu', 'cuda:0'], /--gpu: 'cuda:0' is not valid/],
    [['launch', 'x.yaml', '--local', '2', '--gpus', '0,x'], /--gpus: 'x' is not valid; expected an integer from 0 to 1023/],
    [['launch', 'x.yaml', '--local', '2', '--gpus', ','], /--gpus: .*not valid/],
    [['resume', 'x', '--gpus', '0,-1'], /--gpus: '-1' is not valid; expected an integer from 0 to 1023/],
    [['launch', 'x.yaml', '--coordinator', 'h:1', '--workers', '2', '--token', 't', '--gpus', '0'], /--gpus is for --local/],
    [['worker', '--coordinator', '127.0.0.1:1', '--token', 't', '--nats', 'nats://a:1,,nats://b:2'], /--nats entry 2 is empty/],
    [['coordinator', '--token', 't', '--nats', 'nats://a:1', '--nats', 'http://b:2'], /--nats entry 2 'http:\/\/b:2'/],
  ];
  for (const [args, re] of cases) {
    const r = await bnn(...args);
    assert.equal(r.code, 2, `bnn ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, `bnn ${args.join(' ')}`);
  }
});

test('gpus - launch --local 2 --gpus 3,5: each worker sees only its GPU (CUDA_VISIBLE_DEVICES) and the store records its model, memory, driver and index', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path);
  // An nvidia-smi listing six GPUs, logging the CUDA variables it was run with; an lspci listing
  // none (so the snapshot falls back to nvidia-smi, whatever this host has).
  writeFileSync(
    dir.join('nvidia-smi'),
    `#!/bin/sh
echo "$CUDA_VISIBLE_DEVICES $CUDA_DEVICE_ORDER" >> ${JSON.stringify(dir.join('smi-env.log'))}
case "$*" in
  *name,driver_version,memory.total*) for i in 0 1 2 3 4 5; do echo "Fake GPU $i, 555.0.$i, $((i + 1))000 MiB"; done ;;
  *) exit 1 ;;
esac
`,
  );
  writeFileSync(dir.join('lspci'), '#!/bin/sh\nexit 0\n');
  chmodSync(dir.join('nvidia-smi'), 0o755);
  chmodSync(dir.join('lspci'), 0o755);
  const r = await runCli(['launch', '--local', '2', '--gpus', '3,5', config], {
    cwd: dir.path,
    timeoutMs: 60_000,
    env: { PATH: `${dir.path}${delimiter}${process.env.PATH}` },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /GPUs worker 0 → 3, worker 1 → 5/);
  const seen = new Set(readFileSync(dir.join('smi-env.log'), 'utf8').trim().split('\n'));
  assert.ok(seen.has('3 PCI_BUS_ID') && seen.has('5 PCI_BUS_ID'), [...seen].join(' | '));

  const store = openStore(dir.join('bnn.db'));
  t.after(() => store.close());
  const rows = listHardware(store.db).filter((h) => h.workerId !== null);
  assert.deepEqual(rows.map((h) => [h.gpuIndex, h.gpuModel, h.gpuDriver, h.gpuMemoryBytes, h.gpuCount]).sort(), [
    [3, 'Fake GPU 3', '555.0.3', 4000 * 2 ** 20, 6],
    [5, 'Fake GPU 5', '555.0.5', 6000 * 2 ** 20, 6],
  ]);
});
