import type { Command } from 'commander';
import { z } from 'zod';
import { action, type CommandContext } from '../command.js';
import { ENV, envOption, fromEnv } from '../../config/environment.js';
import { choiceFlag, fileFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { CHECKPOINT_STORES } from '../../checkpoint/index.js';
import { UserError } from '../../util/errors.js';
import { natsUrlWithAuth, parseNatsServers } from '../../collective/nats-url.js';
import {
  addNatsAuthOptions,
  addServerTlsOptions,
  natsAuthFromOptions,
  serverTlsFromFlags,
  type NatsAuthFlags,
  type ServerTlsFlags,
} from '../security-options.js';

interface CoordinatorFlags extends ServerTlsFlags, NatsAuthFlags {
  host: string;
  port: string;
  store: string;
  nats?: string[];
  token?: string;
  heartbeatMs: string;
  suspectMs: string;
  deadMs: string;
  exitWithStdin?: boolean;
  httpHost: string;
  httpPort: string;
  /** false with --no-http. */
  http: boolean;
  checkpointStore: string;
  checkpointReplicas?: string;
}

const portFlag = numberFlag(z.number().int().min(0).max(65535)).describe('a port from 0 to 65535 (0: a free one)');

const flagsSchema = z.object({
  host: z.string().min(1),
  port: portFlag,
  store: fileFlag,
  heartbeatMs: numberFlag(z.number().int().min(10)),
  suspectMs: numberFlag(z.number().int().min(1)),
  deadMs: numberFlag(z.number().int().min(1)),
  httpHost: z.string().min(1),
  httpPort: portFlag,
  checkpointStore: choiceFlag(CHECKPOINT_STORES),
  checkpointReplicas: numberFlag(z.number().int().min(1).max(5)).optional(),
});

/** The cluster token of `--token` (or its BNN_CLUSTER_TOKEN); bad usage when neither is set. */
export function clusterToken(flag: string | undefined): string {
  const token = flag ?? '';
  if (token === '') throw new UserError('a cluster token is required: pass --token <secret> or set BNN_CLUSTER_TOKEN', { exitCode: 2 });
  return token;
}

/** `bnn coordinator`: the gRPC control plane (run lifecycle, membership, ranks) over one experiment database. */
export function registerCoordinator(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('coordinator')
    .description('serve the cluster control plane (gRPC) until SIGINT/SIGTERM')
    .addOption(
      envOption(
        '--host <addr>',
        "address to bind (0.0.0.0, or one of this host's addresses, for workers on other hosts)",
        ENV.coordinatorHost,
        '127.0.0.1',
      ),
    )
    .addOption(
      envOption('--port <n>', 'gRPC port (0: a free one, announced on stdout as {"listening": port})', ENV.coordinatorPort, '50051'),
    )
    .addOption(envOption('--store <file>', 'experiment database', ENV.store, './runs/bnn.db'))
    .addOption(
      envOption(
        '--nats <urls>',
        "NATS url handed to workers (the gradient data plane), or a cluster's seed list (comma-separated or repeated) (default: nats://127.0.0.1:4222)",
        ENV.natsUrl,
      ).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .addOption(envOption('--token <secret>', 'cluster token every call must carry', ENV.clusterToken))
    .option('--heartbeat-ms <n>', 'worker heartbeat interval', '1000')
    .option('--suspect-ms <n>', 'silence after which a worker is suspect', '3000')
    .option('--dead-ms <n>', 'silence after which a worker is dead (its run re-forms without it)', '6000')
    .option('--exit-with-stdin', 'stop when stdin closes (used by bnn launch)')
    .addOption(
      envOption('--http-port <n>', 'monitor port: dashboard at /, Prometheus at /metrics (0: a free one, logged)', ENV.httpPort, '9464'),
    )
    .addOption(envOption('--http-host <addr>', 'monitor address to bind (unauthenticated, read-only)', ENV.httpHost, '127.0.0.1'))
    .option('--no-http', 'no monitor port')
    .addOption(
      envOption(
        '--checkpoint-store <store>',
        "where runs write checkpoints unless their config's checkpointStore says: local (files under checkpointDir) or nats (the JetStream object store of --nats)",
        ENV.checkpointStore,
        'local',
      ),
    )
    .addOption(
      envOption(
        '--checkpoint-replicas <n>',
        'replicas of the object store bucket when it is created (default: min(3, NATS cluster size))',
        ENV.checkpointReplicas,
      ),
    );
  addServerTlsOptions(cmd);
  addNatsAuthOptions(cmd, 'coordinator').action(
    action(ctx, async (raw: CoordinatorFlags, command: Command) => {
      const f = parseFlags(flagsSchema, raw);
      const token = clusterToken(raw.token);
      const tls = serverTlsFromFlags(raw);
      // Credentials reach workers inside the assignment's NATS url (over the token-checked gRPC channel); logs redact them.
      // a seed list travels comma-joined in the assignment's nats_url (one url: as before)
      const natsUrl = natsUrlWithAuth(
        parseNatsServers(raw.nats ?? ['nats://127.0.0.1:4222']).join(','),
        natsAuthFromOptions(raw, (key) => fromEnv(command, key)),
      );
      const { runCoordinator } = await import('../../../coordinator/index.js');
      return runCoordinator({
        host: f.host,
        port: f.port,
        store: f.store,
        token,
        exitWithStdin: raw.exitWithStdin === true,
        ...(tls ? { tls } : {}),
        // The default monitor port may be taken (another coordinator on this host): then it is skipped with a warning.
        ...(raw.http
          ? { http: { host: f.httpHost, port: f.httpPort, optional: command.getOptionValueSource('httpPort') === 'default' } }
          : {}),
        coordinator: {
          natsUrl,
          checkpointStore: f.checkpointStore,
          ...(f.checkpointReplicas !== undefined ? { checkpointReplicas: f.checkpointReplicas } : {}),
          heartbeatIntervalMs: f.heartbeatMs,
          suspectAfterMs: f.suspectMs,
          deadAfterMs: f.deadMs,
        },
        log: ctx.log.line,
        announce: (line) => ctx.io.stdout.write(`${line}\n`),
      });
    }),
  );
}
