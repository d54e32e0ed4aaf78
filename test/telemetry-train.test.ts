import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultRunConfig } from '../src/config/schema.js';
import { createRun, energyByRun, energyPerEpoch, listEnergySamples, listHardware, openStore } from '../src/store/index.js';
import { RunTelemetry } from '../src/telemetry/index.js';
import { runCli } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';

const TINY = `name: tiny
dataset:
  name: synthetic
  synthetic: { trainSize: 256, testSize: 64 }
model:
  hidden: [32]
train:
  epochs: 2
  batchSize: 64
`;

test('telemetry train - bnn train records hardware and per-epoch energy; the summary reports energyJ and its source', async (t) => {
  const dir = await tmpDir({ t });
  writeFileSync(dir.join('tiny.yaml'), TINY);
  const store = dir.join('bnn.db');
  const args = ['train', dir.join('tiny.yaml'), '--store', store, '--checkpoint-dir', dir.join('ckpt'), '--backend', 'cpu'];
  const r = await runCli([...args, '--json'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /warning: telemetry/);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { runId: string; energyJ: number; energySource: string };
  assert.ok(summary.energyJ > 0, String(summary.energyJ));
  assert.match(summary.energySource, /^(nvml\+rapl|nvml|rapl|estimate)$/);

  const s = openStore(store, { readonly: true });
  try {
    const total = energyByRun(s.db, summary.runId);
    assert.ok(Math.abs(total.joules - summary.energyJ) < 1e-9);
    assert.equal(total.source, summary.energySource);
    assert.equal(total.estimated, summary.energySource === 'estimate');
    assert.deepEqual(
      energyPerEpoch(s.db, summary.runId).map((e) => [e.epoch, e.samples]),
      [
        [1, 256],
        [2, 256],
      ],
    );
    assert.equal(listEnergySamples(s.db, summary.runId).at(-1)!.epoch, null, 'the tail after the last epoch has no epoch');
    const hw = listHardware(s.db, { runId: summary.runId });
    assert.equal(hw.length, 1);
    assert.equal(hw[0]!.workerId, null);
    assert.ok(hw[0]!.cpuThreads >= 1);
  } finally {
    s.close();
  }

  // People's output: the final-accuracy line stays last.
  const human = await runCli(args, { timeoutMs: 60_000 });
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout.trimEnd().split('\n').at(-1)!, /^final test accuracy: /);
});

test('telemetry recorder - failures warn once and never throw; energy is then unknown', async (t) => {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('bnn.db'));
  const run = createRun(store.db, { config: defaultRunConfig(), codeVersion: 'x' });
  const warnings: string[] = [];
  // A fake RAPL tree whose counter disappears mid-run.
  const pkg = join(dir.path, 'sys/class/powercap/intel-rapl:0');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'name'), 'package-0\n');
  writeFileSync(join(pkg, 'max_energy_range_uj'), '262143328850\n');
  writeFileSync(join(pkg, 'energy_uj'), '0\n');
  const telemetry = await RunTelemetry.start(store.db, run.id, {
    warn: (w) => warnings.push(w),
    meter: { raplRoot: dir.path, sources: ['rapl'] },
  });
  writeFileSync(join(pkg, 'energy_uj'), '5000000\n');
  await telemetry.epochEnd(1);
  assert.equal(energyByRun(store.db, run.id).joules, 5);
  writeFileSync(join(pkg, 'energy_uj'), 'gone\n');
  telemetry.tick();
  await telemetry.epochEnd(2);
  await telemetry.epochEnd(3);
  assert.deepEqual(await telemetry.finish(), { joules: null, source: null });
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /^bnn: warning: telemetry: energy sampling failed \(not a counter: "gone"\); training continues without it$/);

  // A closed database: the snapshot cannot be written; still one warning and no throw.
  store.close();
  const lines: string[] = [];
  const broken = await RunTelemetry.start(store.db, run.id, { warn: (w) => lines.push(w), meter: { sources: ['estimate'] } });
  await broken.epochEnd(1);
  await broken.finish();
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /telemetry: hardware snapshot failed/);
});
