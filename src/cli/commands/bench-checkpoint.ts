import type { Command } from 'commander';
import { z } from 'zod';
import { numberFlag, parseFlags } from '../../config/flags.js';
import { action, type CommandContext } from '../command.js';

interface BenchCheckpointFlags {
  mib?: string;
  repeats?: string;
  nats?: string;
  dir?: string;
  json?: boolean;
}

const flagsSchema = z.object({
  mib: numberFlag(z.number().min(1).max(16_384)).default(256),
  repeats: numberFlag(z.number().int().min(1).max(100)).default(3),
  nats: z.string().min(1).optional(),
  dir: z.string().min(1).optional(),
});

/** `bnn bench-checkpoint`: checkpoint write/read MB/s, local disk against the NATS JetStream object store, side by side. */
export function registerBenchCheckpoint(program: Command, ctx: CommandContext): void {
  program
    .command('bench-checkpoint')
    .description(
      'time writing and reading one checkpoint to local disk and to the NATS JetStream object store (a nats-server -js started in a temp folder unless --nats), and print MB/s side by side',
    )
    .option('--mib <n>', 'checkpoint size in MiB (default 256)')
    .option('--repeats <n>', 'timed writes and reads per store; the median counts (default 3)')
    .option('--nats <url>', 'an existing NATS server with JetStream instead of one started here')
    .option('--dir <path>', "folder for the local files and the started server's JetStream files (default: the OS temp folder)")
    .option('--json', 'print the figures as JSON')
    .action(
      action(ctx, async (flags: BenchCheckpointFlags) => {
        const f = parseFlags(flagsSchema, flags);
        const { benchCheckpoint } = await import('../../bench/checkpoint.js');
        const r = await benchCheckpoint({
          mib: f.mib,
          repeats: f.repeats,
          ...(f.nats ? { natsUrl: f.nats } : {}),
          ...(f.dir ? { dir: f.dir } : {}),
          progress: (line) => ctx.io.stderr.write(`${line}\n`),
        });
        if (flags.json) ctx.io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        else {
          ctx.io.stdout.write(`bnn bench-checkpoint: ${(r.bytes / 1e6).toFixed(1)} MB checkpoint, median of ${r.repeats}\n`);
          for (const s of r.stores) {
            ctx.io.stdout.write(
              `${s.store.padEnd(5)} write ${s.writeMBps.toFixed(0).padStart(5)} MB/s  read ${s.readMBps.toFixed(0).padStart(5)} MB/s  (${s.where})\n`,
            );
          }
        }
        return 0;
      }),
    );
}
