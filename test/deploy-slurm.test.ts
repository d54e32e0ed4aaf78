// deploy/slurm for real: a one-node Slurm cluster on loopback (deploy/slurm/test-cluster.sh),
// `sbatch deploy/slurm/bnn.sbatch` with two CPU workers on a Fashion-MNIST subset; the job's
// exit code and the run's row in the SQLite database are checked (a COMPLETED run: 0; a FAILED
// one: 1); then a run is scancel'led after its first checkpoint and the same sbatch resumes it to
// COMPLETED; then a run gets USR1 (the time-limit warning): stopped at a checkpoint, the job
// requeues itself and the requeued job resumes it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { getRun, listCheckpoints, listEvents, openStore } from '../src/store/index.js';
import { REPO_ROOT } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';

const SETUP = join(REPO_ROOT, 'deploy', 'slurm', 'test-cluster.sh');
const SBATCH = join(REPO_ROOT, 'deploy', 'slurm', 'bnn.sbatch');
const DATASET = '/usr/share/datasets/fashion-mnist';
const TERMINAL = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'NODE_FAIL',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'OUT_OF_MEMORY',
]);

/** Why the test cannot run here (null: Slurm is up). In CI a setup failure is a failure, not a skip. */
function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (deploy/slurm/test-cluster.sh installs Slurm and starts slurmctld/slurmd)';
  if (!existsSync(join(DATASET, 'train-images-idx3-ubyte.gz')))
    return `needs Fashion-MNIST in ${DATASET} (apt-get install dataset-fashion-mnist)`;
  const r = spawnSync(SETUP, { encoding: 'utf8', timeout: 300_000 });
  if (r.status === 0) return null;
  const why = `Slurm could not be set up (deploy/slurm/test-cluster.sh exit ${r.status ?? r.signal}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
  if (process.env.CI === 'true') throw new Error(why);
  return why;
}
const skip = unavailable();

/** A class-stratified Fashion-MNIST subset, fp32 MLP without BatchNorm, two CPU workers. */
function writeConfig(
  file: string,
  o: { subset: number; epochs: number; batch: number; hidden: number; every: number; dataDir?: string },
): string {
  writeFileSync(
    file,
    `name: slurm-test
seed: 11
dataset: { name: fashion-mnist, subset: ${o.subset}${o.dataDir ? `, dir: ${o.dataDir}` : ''} }
model: { arch: mlp, hidden: [${o.hidden}], precision: fp32, batchNorm: false }
train:
  epochs: ${o.epochs}
  batchSize: ${o.batch}
  checkpointEverySteps: ${o.every}
  optimizer: { lr: 0.003 }
engine: { backend: cpu, threads: 1 }
`,
  );
  return file;
}

interface JobEnd {
  state: string;
  exitCode: string;
  output: string;
}

function jobField(id: string, field: string): string | null {
  const r = spawnSync('scontrol', ['show', 'job', '-o', id], { encoding: 'utf8' });
  return new RegExp(`(?:^| )${field}=(\\S+)`).exec(r.stdout)?.[1] ?? null;
}

async function poll<T>(what: string, timeoutMs: number, probe: () => T | null): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test('deploy slurm - sbatch bnn.sbatch trains with 2 workers (exit 0, COMPLETED); FAILED: exit 1; scancel after a checkpoint, sbatch again: the same run resumes and completes; USR1: requeued and resumed', {
  skip: skip ?? false,
  timeout: 480_000,
}, async (t) => {
  const dir = await tmpDir({ t, prefix: 'bnn-slurm-' });
  const shared = dir.join('shared');
  const tag = `bnn-t${process.pid}-${Date.now().toString(36)}`;
  const jobs: string[] = [];
  t.after(() => {
    for (const id of jobs) spawnSync('scancel', ['--quiet', id]);
  });
  const outputOf = (id: string) => {
    const f = dir.join(`job-${id}.out`);
    return existsSync(f) ? readFileSync(f, 'utf8') : '(no output)';
  };
  const submit = (name: string, config: string, env: Record<string, string> = {}): string => {
    const id = execFileSync(
      'sbatch',
      ['--parsable', `--job-name=${name}`, `--chdir=${dir.path}`, `--output=${dir.join('job-%j.out')}`, SBATCH, config, shared],
      { encoding: 'utf8', env: { ...process.env, BNN: `${process.execPath} ${join(REPO_ROOT, 'bin', 'bnn.js')}`, NO_COLOR: '1', ...env } },
    )
      .trim()
      .split(';')[0]!;
    jobs.push(id);
    return id;
  };
  const ended = (id: string, timeoutMs = 180_000): Promise<JobEnd> =>
    poll(`job ${id} to end`, timeoutMs, () => {
      const state = jobField(id, 'JobState');
      if (state === null || !TERMINAL.has(state)) return null;
      return { state, exitCode: jobField(id, 'ExitCode') ?? '?', output: outputOf(id) };
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${outputOf(id)}`);
    });
  const db = join(shared, 'bnn.db');
  const inStore = <T>(read: (store: ReturnType<typeof openStore>) => T): T => {
    const store = openStore(db, { readonly: true });
    try {
      return read(store);
    } finally {
      store.close();
    }
  };
  const runIdOf = (name: string) => readFileSync(join(shared, `${name}.run`), 'utf8').trim();
  /** The run id of run name `name` once its first checkpoint is recorded. */
  const firstCheckpoint = (name: string, job: string) =>
    poll(`a checkpoint of run ${name}`, 120_000, () => {
      if (!existsSync(join(shared, `${name}.run`)) || !existsSync(db)) return null;
      const id = runIdOf(name);
      return inStore((s) => listCheckpoints(s.db, id).length) > 0 ? id : null;
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${outputOf(job)}`);
    });
  const resumeSteps = (runId: string) =>
    inStore((s) =>
      listEvents(s.db, runId)
        .filter((e) => e.kind === 'resume-requested')
        .map((e) => Number(e.detail?.step)),
    );

  // 1. A run from nothing: the job exits 0 and the database holds it COMPLETED.
  const small = writeConfig(dir.join('small.yaml'), { subset: 0.02, epochs: 2, batch: 100, hidden: 32, every: 3 });
  const first = await ended(submit(`${tag}-a`, small));
  assert.equal(first.state, 'COMPLETED', first.output);
  assert.equal(first.exitCode, '0:0', first.output);
  const runA = runIdOf(`${tag}-a`);
  assert.equal(
    inStore((s) => getRun(s.db, runA).status),
    'COMPLETED',
  );
  assert.match(first.output, /2 worker\(s\) started/);

  // A run that FAILS (its data set is missing on the workers): the job exits 1.
  const bad = writeConfig(dir.join('bad.yaml'), {
    subset: 0.02,
    epochs: 1,
    batch: 100,
    hidden: 32,
    every: 3,
    dataDir: dir.join('no-data'),
  });
  const failed = await ended(submit(`${tag}-f`, bad));
  assert.equal(failed.state, 'FAILED', failed.output);
  assert.equal(failed.exitCode, '1:0', failed.output);
  assert.equal(
    inStore((s) => getRun(s.db, runIdOf(`${tag}-f`)).status),
    'FAILED',
  );

  // 2. Preempted: scancel once a checkpoint is recorded; the run is left resumable, not RUNNING.
  const nameB = `${tag}-b`;
  const long = writeConfig(dir.join('long.yaml'), { subset: 0.05, epochs: 3, batch: 50, hidden: 64, every: 5 });
  const jobB1 = submit(nameB, long);
  const runB = await firstCheckpoint(nameB, jobB1);
  execFileSync('scancel', [jobB1]);
  const cancelled = await ended(jobB1, 90_000);
  assert.equal(cancelled.state, 'CANCELLED', cancelled.output);
  assert.notEqual(cancelled.exitCode, '0:0', cancelled.output);
  const afterCancel = inStore((s) => getRun(s.db, runB).status);
  assert.ok(afterCancel === 'FAILED' || afterCancel === 'CANCELLED', `run ${runB} is ${afterCancel} after scancel`);

  // 3. The same sbatch again: it resumes that run (not a new one) from a checkpoint past step 0.
  const resumed = await ended(submit(nameB, long));
  assert.equal(resumed.state, 'COMPLETED', resumed.output);
  assert.equal(resumed.exitCode, '0:0', resumed.output);
  assert.equal(runIdOf(nameB), runB, 'the run file still names the first run');
  assert.match(resumed.output, new RegExp(`run ${runB} \\(${nameB}\\) is ${afterCancel}: resuming it`));
  assert.equal(
    inStore((s) => getRun(s.db, runB).status),
    'COMPLETED',
  );
  const stepsB = resumeSteps(runB);
  assert.equal(stepsB.length, 1, `resume-requested events: ${JSON.stringify(stepsB)}`);
  assert.ok(stepsB[0]! > 0, `resumed from step ${stepsB[0]}`);
  assert.equal(inStore((s) => s.sqlite.prepare("SELECT count(*) AS n FROM runs WHERE name = 'slurm-test'").get() as { n: number }).n, 3);

  // 4. Once more: the run has COMPLETED, so the job does nothing and exits 0.
  const again = await ended(submit(nameB, long));
  assert.equal(again.exitCode, '0:0', again.output);
  assert.match(again.output, /has already COMPLETED: nothing to do/);

  // 5. The time limit: USR1 to the batch shell (what #SBATCH --signal=B:USR1@120 sends) stops the run
  //    at a checkpoint (CANCELLED) and requeues the job; the requeued job resumes the run.
  const nameC = `${tag}-c`;
  const jobC = submit(nameC, long);
  const runC = await firstCheckpoint(nameC, jobC);
  execFileSync('scancel', ['--signal=USR1', '--batch', jobC]);
  await poll(`job ${jobC} requeued`, 90_000, () =>
    Number(jobField(jobC, 'Restarts')) >= 1 && jobField(jobC, 'JobState') === 'PENDING' ? true : null,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${outputOf(jobC)}`);
  });
  assert.equal(
    inStore((s) => getRun(s.db, runC).status),
    'CANCELLED',
  );
  // Slurm holds a requeued job for AuthInfo's cred_expire (test-cluster.sh: 20 s; Reason=BeginTime), then starts it
  const requeued = await ended(jobC);
  assert.equal(requeued.state, 'COMPLETED', requeued.output);
  assert.equal(requeued.exitCode, '0:0', requeued.output);
  assert.equal(
    inStore((s) => getRun(s.db, runC).status),
    'COMPLETED',
  );
  const stepsC = resumeSteps(runC);
  assert.equal(stepsC.length, 1, `resume-requested events: ${JSON.stringify(stepsC)}`);
  assert.ok(stepsC[0]! > 0, `resumed from step ${stepsC[0]}`);
});
