import type { Command } from 'commander';
import { z } from 'zod';
import { action, type CommandContext } from '../command.js';
import { ENV, envOption, fromEnv } from '../../config/environment.js';
import { choiceFlag, hostPortFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { BACKENDS } from '../../config/schema.js';
import { parseNatsServers } from '../../collective/nats-url.js';
import { cudaLoadAttempted } from '../../native/cuda.js';
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
  nats?: string[];
  gpu?: string;
  token?: string;
  threads: string;
  backend: string;
  connectTimeoutMs: string;
  stepDeadlineMs: string;
  exitWithStdin?: boolean;
  once?: boolean;
  dumpWeightsDir?: string;
}

const flagsSchema = z.object({
  coordinator: hostPortFlag,
  gpu: numberFlag(z.number().int().min(0).max(1023)).describe("a GPU index: an integer from 0 (nvidia-smi's order)").optional(),
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
    .addOption(envOption('--coordinator <host:port>', 'coordinator address', ENV.coordinator).makeOptionMandatory())
    .addOption(
      envOption(
        '--nats <urls>',
        "NATS url, or a cluster's seed list (comma-separated or repeated: nats://a:4222,nats://b:4222); default: the assignment's",
        ENV.natsUrl,
      ).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .addOption(envOption('--token <secret>', 'cluster token', ENV.clusterToken))
    .addOption(
      envOption(
        '--gpu <index>',
        "train on this GPU alone (nvidia-smi's index): sets CUDA_VISIBLE_DEVICES=<index> and CUDA_DEVICE_ORDER=PCI_BUS_ID for this process; recorded with its hardware",
        ENV.workerGpu,
      ),
    )
    .addOption(envOption('--threads <n>', 'threads for the engine (0: all cores)', ENV.workerThreads, '1'))
    .addOption(envOption('--backend <name>', `engine backend: ${BACKENDS.join(', ')}`, ENV.workerBackend, 'auto'))
    .option('--connect-timeout-ms <n>', 'wait this long for the coordinator', '30000')
    .option('--step-deadline-ms <n>', 'an all-reduce step slower than this fails the run', '120000')
    .addOption(
      envOption(
        '--dump-weights-dir <dir>',
        "write each run's final weights there as JSON, weights-rank<r>.json (for checks)",
        ENV.workerDumpWeights,
      ),
    )
    .option('--once', 'train one run, then exit (0 when it completed or was stopped, 1 when it failed here)')
    .option('--exit-with-stdin', 'stop when stdin closes (used by bnn launch)');
  addClientTlsOptions(cmd);
  addNatsAuthOptions(cmd, 'worker').action(
    action(ctx, async (raw: WorkerFlags, command: Command) => {
      const f = parseFlags(flagsSchema, raw);
      const token = clusterToken(raw.token);
      const tls = clientTlsFromFlags(raw);
      const natsAuth = natsAuthFromOptions(raw, (key) => fromEnv(command, key));
      const natsUrl = raw.nats ? parseNatsServers(raw.nats).join(',') : undefined;
      // before anything loads CUDA (the engine loads its addon, and tfjs-node-gpu, when the run starts)
      if (f.gpu !== undefined) selectGpu(f.gpu);
      const { runWorker } = await import('../../../worker/index.js');
      const dump = raw.dumpWeightsDir;
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
        ...(natsUrl ? { natsUrl } : {}),
        ...(f.gpu !== undefined ? { gpu: f.gpu } : {}),
        ...(dump ? { dumpWeightsDir: dump } : {}),
        log: ctx.log.line,
      });
    }),
  );
}

/**
 * Makes GPU `index` (nvidia-smi's order, which is PCI bus order) the only one CUDA shows this
 * process, as its device 0. CUDA reads these variables when it initialises, so this must run
 * before the CUDA addon or tfjs-node-gpu is loaded; after that it would be silently ignored.
 */
export function selectGpu(index: number, env: NodeJS.ProcessEnv = process.env): void {
  if (cudaLoadAttempted()) throw new Error('internal: --gpu applied after the CUDA addon was loaded');
  env.CUDA_VISIBLE_DEVICES = String(index);
  // CUDA's own default order is fastest first; nvidia-smi's (and the hardware snapshot's) is PCI bus order
  env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID';
}
