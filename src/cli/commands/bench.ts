import os from 'node:os';
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { z } from 'zod';
import type { benchXnorVsSgemm } from '../../bench/gemm.js';
import type { benchInference, benchTraining } from '../../bench/model.js';
import type { initEngine } from '../../engine/select.js';
import type { loadNative, NativeAddon } from '../../native/addon.js';
import { action, type CliIO, type CommandContext } from '../command.js';
import { numberFlag, parseFlags } from '../../config/flags.js';
import { UserError } from '../../util/errors.js';

const OPENBLAS_VARS = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;
const CHILD_MARK = 'BNN_BENCH_CHILD';

interface BenchFlags {
  json?: boolean;
  quick?: boolean;
  threads?: string;
}

const flagsSchema = z.object({
  threads: numberFlag(z.number().int().min(1)).optional(),
});

/**
 * OpenBLAS reads its tuning variables when it loads, and a forced `Haswell` core type halves
 * sgemm on this CPU family: the benchmark re-runs itself in a child without them.
 */
function rerunWithoutOpenblasEnv(): number | null {
  if (process.env[CHILD_MARK]) return null;
  const set = OPENBLAS_VARS.filter((v) => process.env[v] !== undefined);
  if (set.length === 0) return null;
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_MARK]: set.map((v) => `${v}=${process.env[v]}`).join(' ') };
  for (const v of OPENBLAS_VARS) delete env[v];
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { env, stdio: 'inherit' });
  return r.status ?? 1;
}

/** `bnn bench`: kernel, training and inference throughput, each comparison measured side by side in one run. */
export function registerBench(program: Command, ctx: CommandContext): void {
  program
    .command('bench')
    .description('measure XNOR GEMM vs OpenBLAS sgemm, MLP training and packed inference throughput')
    .option('--json', 'print every figure as JSON')
    .option('--quick', 'shorter timing windows (noisier)')
    .option('--threads <n>', 'the "all threads" setting (default: all cores)')
    .action(action(ctx, (flags: BenchFlags) => runBench(flags, ctx.io)));
}

/** The benchmarks and what they run on, imported together before the first measurement. */
interface Benchmarks {
  initEngine: typeof initEngine;
  loadNative: typeof loadNative;
  benchXnorVsSgemm: typeof benchXnorVsSgemm;
  benchTraining: typeof benchTraining;
  benchInference: typeof benchInference;
}

async function importBenchmarks(): Promise<Benchmarks> {
  const engine = await import('../../engine/select.js');
  const native = await import('../../native/addon.js');
  const gemm = await import('../../bench/gemm.js');
  const model = await import('../../bench/model.js');
  return {
    initEngine: engine.initEngine,
    loadNative: native.loadNative,
    benchXnorVsSgemm: gemm.benchXnorVsSgemm,
    benchTraining: model.benchTraining,
    benchInference: model.benchInference,
  };
}

/** Where a section writes: `log` for the figures, `progress` for people (both silent under --json). */
interface BenchLines {
  log: (line: string) => void;
  progress: (line: string) => void;
}

/** (a), (b) and (c) in this order, each pair measured back to back; figures for people, or one JSON object with --json. */
async function runBench(flags: BenchFlags, io: CliIO): Promise<number> {
  const f = parseFlags(flagsSchema, flags);
  const rerun = rerunWithoutOpenblasEnv();
  if (rerun !== null) return rerun;
  const all = f.threads ?? os.availableParallelism();
  const benchmarks = await importBenchmarks();
  const native = benchmarks.loadNative();
  if (!native.addon) throw new UserError(`bnn bench needs the native addon: ${native.reason}`);
  const addon = native.addon;
  const was = process.env[CHILD_MARK];
  const envNote = was ? `OpenBLAS tuning variables unset for this benchmark (were: ${was})` : 'OpenBLAS tuning variables were not set';
  const lines: BenchLines = {
    log: (s) => {
      if (!flags.json) io.stdout.write(`${s}\n`);
    },
    progress: (s) => {
      if (!flags.json) io.stderr.write(`${s}\n`);
    },
  };
  const quick = flags.quick === true;
  const info = addon.info();
  lines.log(`bnn bench: ${os.cpus()[0]?.model ?? 'cpu'}, ${all} thread(s) max, XNOR kernel ${info.kernel}`);
  lines.log(envNote);
  const gemmJson = await measureGemm(benchmarks, all, quick, lines);
  const training = await measureTraining(benchmarks, all, quick, lines);
  const inference = measureInference(benchmarks, addon, all, quick, lines);
  if (flags.json) {
    io.stdout.write(
      `${JSON.stringify({
        cpu: os.cpus()[0]?.model ?? null,
        maxThreads: all,
        xnorKernel: info.kernel,
        openblasEnv: envNote,
        xnorVsSgemm: gemmJson,
        training,
        inference,
      })}\n`,
    );
  }
  return 0;
}

/** (a) XNOR GEMM vs sgemm on three shapes, one thread and all; the figures keyed by shape and threads. */
async function measureGemm(b: Benchmarks, all: number, quick: boolean, { log, progress }: BenchLines): Promise<Record<string, unknown>> {
  progress('measuring XNOR GEMM vs OpenBLAS sgemm ...');
  const shapes = [
    { m: 256, k: 4096, n: 4096 },
    { m: 256, k: 2048, n: 2048 },
    { m: 1024, k: 4096, n: 4096 },
  ];
  const threadSet = [...new Set([1, all])];
  const gemm = await b.benchXnorVsSgemm({ shapes, threads: threadSet, minTimeMs: quick ? 150 : 600 });
  const gemmJson: Record<string, unknown> = {};
  log('\n(a) XNOR-popcount GEMM vs OpenBLAS sgemm (weights pre-packed)');
  log('    M x K x N          threads  sgemm GFLOP/s  xnor Gop/s-eq  ratio');
  for (const g of gemm) {
    const key = `${g.shape.m}x${g.shape.k}x${g.shape.n}/threads=${g.threads}`;
    gemmJson[key] = g;
    log(
      `    ${`${g.shape.m}x${g.shape.k}x${g.shape.n}`.padEnd(18)} ${String(g.threads).padStart(7)}  ` +
        `${g.sgemmGflops.toFixed(1).padStart(13)}  ${g.xnorGopsEquivalent.toFixed(1).padStart(13)}  ${g.ratio.toFixed(1).padStart(5)}x`,
    );
  }
  return gemmJson;
}

/** (b) training throughput on the engine `bnn train` uses: binary, then fp32. */
async function measureTraining(
  b: Benchmarks,
  all: number,
  quick: boolean,
  { log, progress }: BenchLines,
): Promise<Record<string, unknown>> {
  progress('measuring MLP training throughput ...');
  const engine = await b.initEngine({ backend: 'native', threads: all });
  const trainSeconds = quick ? 1.5 : 4;
  const trainBinary = b.benchTraining('binary', 256, trainSeconds);
  const trainFp32 = b.benchTraining('fp32', 256, trainSeconds);
  const trainKey = (p: string) => `mlp-784-2048-2048-10/${p}/batch=256/threads=${engine.threads}`;
  log(`\n(b) training, MLP 784-2048-2048-10, batch 256, ${engine.threads} thread(s), ${engine.backend} backend`);
  log(
    `    binary ${Math.round(trainBinary.samplesPerS).toLocaleString('en-US')} samples/s, ` +
      `fp32 ${Math.round(trainFp32.samplesPerS).toLocaleString('en-US')} samples/s, ` +
      `binary/fp32 ${(trainBinary.samplesPerS / trainFp32.samplesPerS).toFixed(2)}x`,
  );
  return {
    [trainKey('binary')]: trainBinary,
    [trainKey('fp32')]: trainFp32,
    binaryOverFp32Ratio: trainBinary.samplesPerS / trainFp32.samplesPerS,
  };
}

/** (c) inference, packed binary vs FP32 on the same runtime, at batch 256 and 1 (each pair measured back to back). */
function measureInference(
  b: Benchmarks,
  addon: NativeAddon,
  all: number,
  quick: boolean,
  { log, progress }: BenchLines,
): Record<string, unknown> {
  progress('measuring packed inference throughput ...');
  addon.setThreads(all);
  const infJson: Record<string, unknown> = {};
  log(`\n(c) inference, MLP 784-2048-2048-10, ${all} thread(s): packed binary vs FP32`);
  for (const batch of [256, 1]) {
    const bin = b.benchInference(addon, 'binary', true, batch, quick ? 0.7 : 2);
    const fp = b.benchInference(addon, 'fp32', false, batch, quick ? 0.7 : 2);
    infJson[`mlp-784-2048-2048-10/batch=${batch}/threads=${all}`] = {
      binaryPackedSamplesPerS: bin.samplesPerS,
      fp32SamplesPerS: fp.samplesPerS,
      ratio: bin.samplesPerS / fp.samplesPerS,
      binaryPackedBytes: bin.fileBytes,
      fp32Bytes: fp.fileBytes,
    };
    log(
      `    batch ${String(batch).padStart(3)}: binary ${Math.round(bin.samplesPerS).toLocaleString('en-US')} samples/s, ` +
        `fp32 ${Math.round(fp.samplesPerS).toLocaleString('en-US')} samples/s, ratio ${(bin.samplesPerS / fp.samplesPerS).toFixed(2)}x`,
    );
  }
  return infJson;
}
