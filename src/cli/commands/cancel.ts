import type { Command } from 'commander';
import { ENV, envOption } from '../../config/environment.js';
import { z } from 'zod';
import { hostPortFlag, parseFlags } from '../../config/flags.js';
import { action, type CommandContext } from '../command.js';
import { addClientTlsOptions, clientTlsFromFlags, type ClientTlsFlags } from '../security-options.js';
import { clusterToken } from './coordinator.js';

interface CancelFlags extends ClientTlsFlags {
  coordinator: string;
  token?: string;
  json?: boolean;
}

const flagsSchema = z.object({ coordinator: hostPortFlag });

/** `bnn cancel --coordinator host:port <run…>`: CancelRun for queued or running runs of a cluster. */
export function registerCancel(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('cancel')
    .description('cancel runs on a running cluster: a queued run never starts; a running one stops at its next step boundary, checkpointed')
    .argument('<runs...>', 'run ids or unique prefixes')
    .addOption(envOption('--coordinator <host:port>', 'coordinator address', ENV.coordinator).makeOptionMandatory())
    .addOption(envOption('--token <secret>', 'cluster token', ENV.clusterToken))
    .option('--json', 'print the runs as a JSON array on stdout');
  addClientTlsOptions(cmd).action(
    action(ctx, async (ids: string[], raw: CancelFlags) => {
      const f = parseFlags(flagsSchema, raw);
      const tls = clientTlsFromFlags(raw);
      const { connectCoordinator } = await import('../../rpc/index.js');
      const client = connectCoordinator(f.coordinator, { token: clusterToken(raw.token), ...(tls ? { tls } : {}) });
      try {
        await client.waitForReady(30_000);
        const out: Array<{ runId: string; status: string }> = [];
        for (const id of ids) {
          const info = await client.cancelRun({ run_id: id });
          out.push({ runId: info.run_id, status: info.status });
          if (!raw.json) ctx.io.stdout.write(`${info.run_id} ${info.status}\n`);
        }
        if (raw.json) ctx.io.stdout.write(`${JSON.stringify(out)}\n`);
        return 0;
      } finally {
        client.close();
      }
    }),
  );
}
