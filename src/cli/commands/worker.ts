import type { Command } from 'commander';
import { z } from 'zod';
import { action, type CommandContext } from '../command.js';
import { choiceFlag, hostPortFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { BACKENDS } from '../../config/schema.js';
import { clusterToken } from './coordinator.js';
import {
  addClientTlsOptions,
  addNatsAuthOptions,
  clientTlsFromFlags,
  natsAuthFromOptions,
  type ClientTlsFlags,
  type NatsAuthFlags,
} from '../security-options.js';

interface WorkerFlags extends ClientTlsFlags, NatsAuthFlags {
  coordinator: string;
  nats?: string;
  token?: string;
  threads: string;
  backend: string;
  connectTimeoutMs: string;
  stepDeadlineMs: string;
  exitWithStdin?: boolean;
  once?: boolean;
}

const flagsSchema = z.object({
  coordinator: hostPortFlag,
  threads: numberFlag(z.number().int().min(0).max(1024)),
  backend: choiceFlag(BACKENDS),
  connectTimeoutMs: numberFlag(z.number().int().min(1)),
  stepDeadlineMs: numberFlag(z.number().int().min(1)),
});

/** `bnn worker`: joins a coordinator and trains the runs it assigns, data-parallel, until stopped (`--once`: one run). */
export function registerWorker(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('worker')
    .description(
      'register with a coordinator and train the runs it assigns (gradients all-reduced over NATS), one after another, until SIGTERM/SIGINT',
    )
    .requiredOption('--coordinator <host:port>', 'coordinator address')
    .option('--nats <url>', 'NATS url (default: the one in the assignment)')
    .option('--token <secret>', 'cluster token (default: BNN_CLUSTER_TOKEN)')
    .option('--threads <n>', 'threads for the engine (0: all cores)', '1')
    .option('--backend <name>', `engine backend: ${BACKENDS.join(', ')}`, 'auto')
    .option('--connect-timeout-ms <n>', 'wait this long for the coordinator', '30000')
    .option('--step-deadline-ms <n>', 'an all-reduce step slower than this fails the run', '120000')
    .option('--once', 'train one run, then exit (0 when it completed or was stopped, 1 when it failed here)')
    .option('--exit-with-stdin', 'stop when stdin closes (used by bnn launch)');
  addClientTlsOptions(cmd);
  addNatsAuthOptions(cmd, 'worker').action(
    action(ctx, async (raw: WorkerFlags) => {
      const f = parseFlags(flagsSchema, raw);
      const token = clusterToken(raw.token);
      const tls = clientTlsFromFlags(raw);
      const natsAuth = natsAuthFromOptions(raw);
      const { runWorker } = await import('../../../worker/index.js');
      const dump = process.env.BNN_WORKER_DUMP_WEIGHTS;
      return runWorker({
        coordinator: f.coordinator,
        token,
        threads: f.threads,
        backend: f.backend,
        exitWithStdin: raw.exitWithStdin === true,
        once: raw.once === true,
        connectTimeoutMs: f.connectTimeoutMs,
        stepDeadlineMs: f.stepDeadlineMs,
        natsAuth,
        ...(tls ? { tls } : {}),
        ...(raw.nats ? { natsUrl: raw.nats } : {}),
        ...(dump ? { dumpWeightsDir: dump } : {}),
        log: (line) => ctx.io.stderr.write(`${line}\n`),
      });
    }),
  );
}
