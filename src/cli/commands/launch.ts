import type { Command } from 'commander';
import { z } from 'zod';
import { CHECKPOINT_STORES } from '../../checkpoint/index.js';
import { COMPRESSIONS } from '../../collective/compression.js';
import { localJetstreamDir } from '../../launch/local-cluster.js';
import type { RunConfig } from '../../config/index.js';
import { ENV, envOption, typedOptions } from '../../config/environment.js';
import { choiceFlag, hostPortFlag, listFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { loadConfig } from '../../config/load.js';
import { applyOverrides } from '../../config/overrides.js';
import { UserError } from '../../util/errors.js';
import { workerGpuArgs } from '../../launch/local-cluster.js';
import { runClusterSession, type SessionStart, type SessionTarget } from '../cluster-session.js';
import { action, type CommandContext } from '../command.js';
import { addConfigOverrideOptions, overridesFromOptions, refuseFlags } from '../options.js';
import { addClientTlsOptions, clientTlsFromFlags, type ClientTlsFlags } from '../security-options.js';
import { clusterToken } from './coordinator.js';

interface LaunchFlags extends ClientTlsFlags, Record<string, unknown> {
  local?: string;
  threadsPerWorker?: string;
  gpus?: string;
  compression?: string;
  natsServerBin?: string;
  coordinator?: string;
  workers?: string;
  token?: string;
  json?: boolean;
  quiet?: boolean;
  priority?: string;
  detach?: boolean;
  checkpointStore?: string;
}

const compressionFlag = choiceFlag(COMPRESSIONS).optional();

/** `--gpus 0,1`: GPU indexes dealt to local workers round-robin (launch --local, resume). */
export const gpusFlag = listFlag(numberFlag(z.number().int().min(0).max(1023))).describe('GPU indexes, comma-separated (0,1)');
/** The `--gpus` option's help. */
export const GPUS_HELP = 'GPU indexes (0,1): local worker i runs on GPU list[i mod length] (bnn worker --gpu)';

const localFlags = z.object({
  local: numberFlag(z.number().int().min(1).max(64)),
  threadsPerWorker: numberFlag(z.number().int().min(0).max(1024)).optional(),
  gpus: gpusFlag.optional(),
  compression: compressionFlag,
  checkpointStore: choiceFlag(CHECKPOINT_STORES).optional(),
});

const remoteFlags = z.object({
  coordinator: hostPortFlag,
  workers: numberFlag(z.number().int().min(1).max(1024)),
  compression: compressionFlag,
  priority: numberFlag(z.number().int().min(-1_000_000).max(1_000_000)).optional(),
});

/** `bnn launch --local N <config>` (a cluster on this host) or `--coordinator host:port --workers N` (a running one): one run. */
export function registerLaunch(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('launch')
    .description('train one run data-parallel: --local N starts nats-server, a coordinator and N workers on this host')
    .argument('<config>', 'run config (YAML)')
    .option('--local <n>', 'workers to start on this host')
    .option('--threads-per-worker <n>', 'engine threads of each local worker when the config leaves engine.threads at 0 (default: 1)')
    .option('--gpus <list>', `with --local: ${GPUS_HELP}`)
    .option('--compression <mode>', `gradient all-reduce wire format: ${COMPRESSIONS.join(', ')} (sets train.compression)`)
    .option(
      '--checkpoint-store <store>',
      "with --local: where checkpoints go unless the config's checkpointStore says: local (default) or nats (the JetStream object store of the launched nats-server, files beside checkpointDir)",
    )
    .option('--nats-server-bin <path>', 'nats-server executable (default: nats-server on PATH, or NATS_SERVER_BIN)')
    .addOption(
      envOption(
        '--coordinator <host:port>',
        'submit to a running cluster instead and follow the run (Ctrl-C cancels it); from the environment, unless --local is given',
        ENV.coordinator,
      ),
    )
    .option('--workers <n>', 'with --coordinator: how many of its workers train the run')
    .addOption(envOption('--token <secret>', 'with --coordinator: the cluster token', ENV.clusterToken))
    .option('--priority <n>', 'with --coordinator: queue order while the run waits for workers (higher first; default 0, then FIFO)')
    .option('--detach', 'with --coordinator: submit, print the run id and exit (the cluster runs it; bnn monitor / bnn show follow it)');
  addClientTlsOptions(cmd);
  addConfigOverrideOptions(cmd)
    .option('--json', 'print the result as one JSON object on stdout (no progress lines)')
    .option('--quiet', 'no progress lines')
    .action(
      action(ctx, async (configPath: string, raw: LaunchFlags, command: Command) => {
        const { target, workers, compression, priority } = launchTarget(raw, typedOptions(command, raw));
        const loaded = applyOverrides(await loadConfig(configPath), overridesFromOptions(raw));
        // --compression is the config's train.compression (recorded with the run's config)
        const config: RunConfig = compression ? { ...loaded, train: { ...loaded.train, compression } } : loaded;
        const local = target.kind === 'local' ? localTarget(target, config) : target;
        return runClusterSession(local, submission(config, configPath, workers, local, priority), {
          io: ctx.io,
          log: ctx.log,
          json: raw.json === true,
          quiet: raw.quiet === true,
          detach: raw.detach === true,
          ...(local.kind === 'local' ? { store: config.store } : {}),
        });
      }),
    );
}

/** A local cluster for `config`: its backend and store; JetStream on where its checkpoints go to the object store. */
function localTarget(target: Extract<SessionTarget, { kind: 'local' }>, config: RunConfig): SessionTarget {
  const store = config.checkpointStore ?? target.checkpointStore ?? 'local';
  return {
    ...target,
    backend: config.engine.backend,
    store: config.store,
    ...(store === 'nats' ? { jetstreamDir: localJetstreamDir(config.checkpointDir) } : {}),
  };
}

/**
 * Where to launch, from the flags (checked before any I/O); `typed`: those typed, not from the
 * environment (BNN_COORDINATOR and the rest apply only when --local is not typed).
 */
function launchTarget(
  raw: LaunchFlags,
  typed: Partial<LaunchFlags>,
): {
  target: SessionTarget;
  workers: number;
  compression?: RunConfig['train']['compression'];
  priority: number;
} {
  if (typed.coordinator !== undefined || (raw.coordinator !== undefined && raw.local === undefined)) {
    if (raw.local !== undefined)
      throw new UserError('give either --local <n> (start a cluster here) or --coordinator <host:port> (use a running one), not both', {
        exitCode: 2,
      });
    if (raw.gpus !== undefined)
      throw new UserError('--gpus is for --local: workers of a running cluster choose their GPU with bnn worker --gpu', { exitCode: 2 });
    if (raw.checkpointStore !== undefined)
      throw new UserError(
        "--checkpoint-store goes with --local (a running coordinator has its own --checkpoint-store; the config's checkpointStore chooses per run)",
        { exitCode: 2 },
      );
    const via =
      typed.coordinator !== undefined
        ? '--coordinator'
        : `--coordinator (from ${ENV.coordinator}; --local <n> starts a cluster here instead)`;
    if (raw.workers === undefined)
      throw new UserError(`bnn launch ${via} needs --workers <n>: how many of the cluster's workers train the run`, { exitCode: 2 });
    const f = parseFlags(remoteFlags, raw);
    const target: SessionTarget = {
      kind: 'remote',
      address: f.coordinator,
      token: clusterToken(raw.token),
      tls: clientTlsFromFlags(raw),
      connectTimeoutMs: 30_000,
    };
    return { target, workers: f.workers, priority: f.priority ?? 0, ...(f.compression ? { compression: f.compression } : {}) };
  }
  refuseFlags(
    { '--detach': raw.detach, '--priority': raw.priority },
    'needs --coordinator <host:port>: a --local cluster lives only as long as its one run',
  );
  if (raw.local === undefined)
    throw new UserError('bnn launch needs --local <n> (start a cluster here) or --coordinator <host:port> (submit to a running one)', {
      exitCode: 2,
    });
  const f = parseFlags(localFlags, raw);
  const target: SessionTarget = {
    kind: 'local',
    workers: f.local,
    threadsPerWorker: f.threadsPerWorker ?? 1,
    ...(f.gpus ? { gpus: f.gpus } : {}),
    backend: 'auto',
    store: '',
    ...(raw.natsServerBin ? { natsServerBin: raw.natsServerBin } : {}),
    ...(f.checkpointStore ? { checkpointStore: f.checkpointStore } : {}),
  };
  return { target, workers: f.local, priority: 0, ...(f.compression ? { compression: f.compression } : {}) };
}

function submission(config: RunConfig, configPath: string, workers: number, target: SessionTarget, priority: number): SessionStart {
  return {
    workers,
    start: async (client) => {
      const info = await client.submitRun({ config_json: JSON.stringify(config), workers, config_path: configPath, priority });
      return { runId: info.run_id };
    },
    header: (runId, where) => {
      const what = `bnn: run ${runId} (${config.name}): ${config.model.arch} ${config.model.precision}`;
      if (target.kind === 'remote')
        return [`${what}, ${workers} worker(s) of the cluster at ${target.address}${target.tls ? ' (TLS)' : ''}`];
      return [
        `${what}, ${workers} local worker(s), coordinator ${where.coordinator}, nats ${where.natsUrl}`,
        ...(target.gpus
          ? [`bnn: GPUs ${Array.from({ length: workers }, (_, i) => `worker ${i} → ${workerGpuArgs(target.gpus, i)[1]}`).join(', ')}`]
          : []),
        ...(where.dashboard ? [`bnn: dashboard ${where.dashboard} (Prometheus metrics at ${where.dashboard}metrics)`] : []),
      ];
    },
  };
}
