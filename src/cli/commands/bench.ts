import os from 'node:os';
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { z } from 'zod';
import { action, type CommandContext } from '../command.js';
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
    .action(
      action(ctx, async (flags: BenchFlags) => {
        const f = parseFlags(flagsSchema, flags);
        const rerun = rerunWithoutOpenblasEnv();
        if (rerun !== null) return rerun;
        const all = f.threads ?? os.availableParallelism();
        const { initEngine } = await import('../../engine/select.js');
        const { loadNative } = await import('../../native/addon.js');
        const { benchXnorVsSgemm } = await import('../../bench/gemm.js');
        const { benchTraining, benchInference } = await import('../../bench/model.js');
        const native = loadNative();
        if (!native.addon) throw new UserError(`bnn bench needs the native addon: ${native.reason}`);
        const addon = native.addon;
        const was = process.env[CHILD_MARK];
        const envNote = was
          ? `OpenBLAS tuning variables unset for this benchmark (were: ${was})`
          : 'OpenBLAS tuning variables were not set';
        const log = (s: string) => {
          if (!flags.json) ctx.io.stdout.write(`${s}\n`);
        };
        const progress = (s: string) => {
          if (!flags.json) ctx.io.stderr.write(`${s}\n`);
        };
        const quick = flags.quick === true;
        const info = addon.info();
        log(`bnn bench: ${os.cpus()[0]?.model ?? 'cpu'}, ${all} thread(s) max, XNOR kernel ${info.kernel}`);
        log(envNote);

        // (a) XNOR GEMM vs sgemm
        progress('measuring XNOR GEMM vs OpenBLAS sgemm ...');
        const shapes = [
          { m: 256, k: 4096, n: 4096 },
          { m: 256, k: 2048, n: 2048 },
          { m: 1024, k: 4096, n: 4096 },
        ];
        const threadSet = [...new Set([1, all])];
        const gemm = await benchXnorVsSgemm({ shapes, threads: threadSet, minTimeMs: quick ? 150 : 600 });
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

        // (b) training throughput on the engine `bnn train` uses
        progress('measuring MLP training throughput ...');
        const engine = await initEngine({ backend: 'native', threads: all });
        const trainSeconds = quick ? 1.5 : 4;
        const trainBinary = benchTraining('binary', 256, trainSeconds);
        const trainFp32 = benchTraining('fp32', 256, trainSeconds);
        const trainKey = (p: string) => `mlp-784-2048-2048-10/${p}/batch=256/threads=${engine.threads}`;
        log(`\n(b) training, MLP 784-2048-2048-10, batch 256, ${engine.threads} thread(s), ${engine.backend} backend`);
        log(
          `    binary ${Math.round(trainBinary.samplesPerS).toLocaleString('en-US')} samples/s, ` +
            `fp32 ${Math.round(trainFp32.samplesPerS).toLocaleString('en-US')} samples/s, ` +
            `binary/fp32 ${(trainBinary.samplesPerS / trainFp32.samplesPerS).toFixed(2)}x`,
        );

        // (c) inference: packed binary vs FP32, same runtime
        progress('measuring packed inference throughput ...');
        addon.setThreads(all);
        const infJson: Record<string, unknown> = {};
        log(`\n(c) inference, MLP 784-2048-2048-10, ${all} thread(s): packed binary vs FP32`);
        for (const batch of [256, 1]) {
          const bin = benchInference(addon, 'binary', true, batch, quick ? 0.7 : 2);
          const fp = benchInference(addon, 'fp32', false, batch, quick ? 0.7 : 2);
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
        if (flags.json) {
          ctx.io.stdout.write(
            `${JSON.stringify({
              cpu: os.cpus()[0]?.model ?? null,
              maxThreads: all,
              xnorKernel: info.kernel,
              openblasEnv: envNote,
              xnorVsSgemm: gemmJson,
              training: {
                [trainKey('binary')]: trainBinary,
                [trainKey('fp32')]: trainFp32,
                binaryOverFp32Ratio: trainBinary.samplesPerS / trainFp32.samplesPerS,
              },
              inference: infJson,
            })}\n`,
          );
        }
        return 0;
      }),
    );
}
