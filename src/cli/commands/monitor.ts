import type { Command } from 'commander';
import { ENV, envOption, typedOptions } from '../../config/environment.js';
import { z } from 'zod';
import { action, type CommandContext } from '../command.js';
import { hostPortFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { addClientTlsOptions, clientTlsFromFlags, type ClientTlsFlags } from '../security-options.js';
import { clusterToken } from './coordinator.js';

interface MonitorFlags extends ClientTlsFlags {
  coordinator?: string;
  token?: string;
  run?: string;
  refreshMs: string;
  timeoutMs: string;
  once?: boolean;
  json?: boolean;
}

const flagsSchema = z.object({
  coordinator: hostPortFlag.optional(),
  refreshMs: numberFlag(z.number().int().min(100).max(60_000)),
  timeoutMs: numberFlag(z.number().int().min(1)),
});

/** `bnn monitor`: a live terminal table of a cluster's workers, from the coordinator's WatchCluster stream. */
export function registerMonitor(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('monitor')
    .description(
      "live table of a cluster's workers (state, rank, run, step, samples/s, CPU/GPU use, temperature, power, heartbeat age); q or Ctrl-C quits",
    )
    .addOption(
      envOption(
        '--coordinator <host:port>',
        "coordinator address (default: this user's one running 'bnn launch --local' cluster)",
        ENV.coordinator,
      ),
    )
    .addOption(envOption('--token <secret>', 'cluster token (a local cluster: from its cluster file unless typed)', ENV.clusterToken))
    .option('--run <id>', "only this run's events")
    .option('--refresh-ms <n>', 'how often the coordinator sends a full snapshot (100-60000)', '1000')
    .option('--timeout-ms <n>', 'give up when the first snapshot has not come within this', '10000')
    .option('--once', 'print one snapshot as a table and exit')
    .option('--json', 'print one snapshot as JSON and exit');
  addClientTlsOptions(cmd).action(
    action(ctx, async (raw: MonitorFlags, command: Command) => {
      const f = parseFlags(flagsSchema, raw);
      const tls = clientTlsFromFlags(raw);
      let coordinator = f.coordinator;
      let token: string;
      if (coordinator === undefined) {
        const { theLocalCluster } = await import('../../launch/cluster-file.js');
        const local = theLocalCluster();
        coordinator = local.coordinator;
        token = typedOptions(command, raw).token ?? local.token;
        ctx.io.stderr.write(
          `bnn: the local cluster of bnn launch (pid ${local.pid})${local.runId ? `, run ${local.runId}` : ''}, at ${coordinator}\n`,
        );
      } else token = clusterToken(raw.token);
      const { connectCoordinator } = await import('../../rpc/index.js');
      const { runMonitor } = await import('../../monitor/index.js');
      const client = connectCoordinator(coordinator, { token, ...(tls ? { tls } : {}) });
      try {
        await client.waitForReady(f.timeoutMs);
        return await runMonitor(
          (req) => client.watchCluster(req),
          {
            coordinator,
            runId: raw.run ?? '',
            refreshMs: f.refreshMs,
            once: raw.once === true,
            json: raw.json === true,
            firstSnapshotTimeoutMs: f.timeoutMs,
          },
          { stdout: ctx.io.stdout, stdin: process.stdin },
        );
      } finally {
        client.close();
      }
    }),
  );
}
