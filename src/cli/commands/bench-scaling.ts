import type { Command } from 'commander';
import { z } from 'zod';
import { action, type CommandContext } from '../command.js';
import { choiceFlag, listFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { UserError } from '../../util/errors.js';
import { COMPRESSIONS } from '../../collective/compression.js';
import { compressionList } from './bench-allreduce.js';
import { BATCH_MODES } from '../../bench/scaling-modes.js';

interface BenchScalingFlags {
  compression: string;
  batch: string;
  workers: string;
  epochs: string;
  subset: string;
  repeats: string;
  json?: boolean;
}

const flagsSchema = z.object({
  compression: compressionList,
  batch: listFlag(choiceFlag(BATCH_MODES), { unique: true }),
  workers: listFlag(numberFlag(z.number().int().min(1).max(16))),
  epochs: numberFlag(z.number().int().min(1).max(100)),
  subset: numberFlag(z.number().gt(0).lte(1)),
  repeats: numberFlag(z.number().int().min(1).max(20)),
});

/** `bnn bench-scaling` (also `bnn bench scaling`): samples/s with 1 and 2 local workers per compression, as a ratio. */
export function registerBenchScaling(program: Command, ctx: CommandContext): void {
  const configure = (cmd: Command) =>
    cmd
      .description(
        'samples/s of a config trained by bnn launch --local N (real nats-server, coordinator, workers; 1 thread each) for N = 1 and 2 and each compression, and the ratio',
      )
      .argument('[config]', 'run config (YAML)', 'examples/fmnist-mlp-binary.yaml')
      .option('--compression <modes>', `comma-separated: ${COMPRESSIONS.join(', ')}`, COMPRESSIONS.join(','))
      .option(
        '--batch <modes>',
        "global: N workers split the config's batch (strong scaling); per-worker: each worker computes the config's batch, a global batch of N times it (weak scaling, as DDP's per-process batch)",
        BATCH_MODES.join(','),
      )
      .option('--workers <N,...>', 'worker counts; the first is the baseline of the ratio', '1,2')
      .option('--epochs <n>', 'epochs per run; the last one is reported (the first warms up)', '2')
      .option('--subset <fraction>', 'fraction of the training set per epoch', '0.25')
      .option('--repeats <n>', 'runs per configuration (median reported)', '1')
      .option('--json', 'print the report as JSON')
      .action(
        action(ctx, async (configPath: string, flags: BenchScalingFlags, self: Command) => {
          // under `bnn bench scaling`, `bench`'s own --json comes in as a global option
          const raw: BenchScalingFlags = { ...flags, json: flags.json || self.optsWithGlobals().json === true };
          const f = parseFlags(flagsSchema, raw);
          const { existsSync } = await import('node:fs');
          if (!existsSync(configPath))
            throw new UserError(`config '${configPath}' not found (give a run config YAML, e.g. examples/fmnist-mlp-binary.yaml)`);
          const { benchScaling } = await import('../../bench/scaling.js');
          const { loadConfig } = await import('../../config/index.js');
          const config = await loadConfig(configPath);
          const report = await benchScaling({
            configPath,
            batchSize: config.train.batchSize,
            batchModes: f.batch,
            compressions: f.compression,
            workers: f.workers,
            epochs: f.epochs,
            subset: f.subset,
            repeats: f.repeats,
            progress: raw.json ? undefined : (line) => ctx.io.stderr.write(`${line}\n`),
          });
          if (raw.json) {
            ctx.io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
            return 0;
          }
          const out: string[] = [];
          out.push(
            `bnn bench scaling: ${report.config} (batch ${report.batchSize}), bnn launch --local N, ${report.threadsPerWorker} engine thread per worker, ${report.cores} core(s)`,
          );
          out.push(
            `subset ${report.subset} of the training set, samples/s of epoch ${report.epochs} of ${report.epochs} (rank 0's epoch wall time)` +
              `${f.repeats > 1 ? `, median of ${f.repeats}` : ''}; load average ${report.loadAverage.before.toFixed(2)} before, ${report.loadAverage.after.toFixed(2)} after`,
          );
          out.push('');
          const base = f.workers[0];
          const header = ['batch', 'compression', 'workers', 'batch per worker', 'samples/s', `vs ${base} worker${base === 1 ? '' : 's'}`];
          const rows = report.rows.map((r) => [
            r.batchMode,
            r.compression,
            String(r.workers),
            String(r.perWorkerBatch),
            Math.round(r.samplesPerS).toLocaleString('en-US'),
            `${r.speedup.toFixed(2)}×`,
          ]);
          const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
          const line = (cells: string[]) =>
            cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
          out.push(line(header));
          for (const row of rows) out.push(line(row));
          ctx.io.stdout.write(`${out.join('\n')}\n`);
          return 0;
        }),
      );
  configure(program.command('bench-scaling'));
  // also `bnn bench scaling`, when `bnn bench` is registered before this command
  const bench = program.commands.find((c) => c.name() === 'bench');
  if (bench) configure(bench.command('scaling'));
}
