import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseLogRecord } from '../../src/util/log.js';
import { CLI_ENTRY, REPO_ROOT } from './cli.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

/** A tiny synthetic run (optionally a scale-sensitive Adam): no BatchNorm, fp32 MLP, 310 samples in batches of 32 (10 steps per epoch, last batch 22). */
export function writeTinyConfig(dir: string, options: { optimizerEpsilon?: number; epochs?: number } = {}): string {
  const file = join(dir, 'tiny.yaml');
  writeFileSync(
    file,
    `name: tiny
seed: 3
dataset:
  name: synthetic
  synthetic: { trainSize: 310, testSize: 64, shape: [4, 4, 1], numClasses: 3 }
model: { arch: mlp, hidden: [16], precision: fp32, batchNorm: false }
train:
  epochs: ${options.epochs ?? 2}
  batchSize: 32
  schedule: { name: cosine }
  optimizer: { lr: 0.01, epsilon: ${options.optimizerEpsilon ?? 1e-7} }
engine: { backend: cpu, threads: 1 }
store: ${join(dir, 'bnn.db')}
checkpointDir: ${join(dir, 'ckpt')}
`,
  );
  return file;
}

export interface WeightsDump {
  runId: string;
  steps: number;
  worldSize: number;
  params: Record<string, number[]>;
}

export function readWeights(dir: string, rank = 0): WeightsDump {
  return JSON.parse(readFileSync(join(dir, `weights-rank${rank}.json`), 'utf8')) as WeightsDump;
}

/** Largest |a − b| / max|b| over the tensors of two dumps (Infinity when their names differ). */
export function maxRelativeDiff(a: WeightsDump, b: WeightsDump): number {
  const names = Object.keys(b.params).sort();
  if (Object.keys(a.params).sort().join() !== names.join()) return Infinity;
  let worst = 0;
  for (const n of names) {
    const x = a.params[n]!;
    const y = b.params[n]!;
    if (x.length !== y.length) return Infinity;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < y.length; i++) {
      scale = Math.max(scale, Math.abs(y[i]!));
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    }
    worst = Math.max(worst, diff / (scale || 1));
  }
  return worst;
}

/** Command lines of live processes that mention `needle` (to prove children were stopped). */
export function processesMentioning(needle: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(needle) && !l.includes('ps -eo'));
}

/** `stderr` of a bnn process with each log line's timestamp and level taken off (its messages, one per line). */
export function logMessages(stderr: string): string {
  return stderr
    .split('\n')
    .map((raw) => parseLogRecord('text', raw)?.msg ?? raw)
    .join('\n');
}

export interface LaunchedCli {
  child: ChildProcess;
  /** Resolves with the first stderr line matching `re`; a log line is matched by its message (timestamp and level taken off). */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves when the child exited, with its code and output. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** `bnn <args>` as a child process whose stderr lines can be awaited; killed (SIGKILL) when the test ends. */
export function spawnCli(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; t: { after(fn: () => void): void } },
): LaunchedCli {
  const child = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a test can send Ctrl-C to the group as a terminal would.
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  // Lines are kept so a wait for a line that already arrived (two lines in one chunk: readline
  // emits both before the test registers its next wait) still sees it; each wait looks at the
  // lines after the last one a wait matched.
  const lines: string[] = [];
  let next = 0;
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  createInterface({ input: child.stderr! }).on('line', (raw) => {
    stderr += `${raw}\n`;
    const line = parseLogRecord('text', raw)?.msg ?? raw;
    lines.push(line);
    for (const w of [...waiters]) {
      const m = line.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        next = lines.length;
        w.resolve(m);
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  options.t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    exited,
    waitForLine(re, timeoutMs = 20_000) {
      for (let i = next; i < lines.length; i++) {
        const m = (lines[i] as string).match(re);
        if (m) {
          next = i + 1;
          return Promise.resolve(m);
        }
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no stderr line matching ${re} within ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
        waiters.push({
          re,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`exited before a line matching ${re}:\n${stderr}`));
        });
      });
    },
  };
}
