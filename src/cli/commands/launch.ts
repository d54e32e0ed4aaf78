import type { Command } from 'commander';
import { z } from 'zod';
import { loadConfig } from '../../config/load.js';
import { applyOverrides } from '../../config/overrides.js';
import { action, type CommandContext } from '../command.js';
import { addConfigOverrideOptions, overridesFromOptions } from '../options.js';
import { UserError } from '../../util/errors.js';
import { addClientTlsOptions } from '../security-options.js';
import { launchRemote } from './launch-remote.js';
import { followRun, resumeHint, type LocalClusterFlags } from './resume.js';
import { EXIT, pct, type EpochEvent, type Terminal } from './run-events.js';

const flagsSchema = z.object({
  local: z.coerce.number({ error: () => '--local: expected a worker count from 1 to 64' }).int().min(1).max(64),
  threadsPerWorker: z.coerce.number().int().min(0).max(1024),
  compression: z.enum(['none', 'fp16', 'sign-ef'], { error: () => '--compression: expected none, fp16 or sign-ef' }).optional(),
});

/** `bnn launch --local N <config>`: nats-server, a coordinator and N workers on this host; one run. */
export function registerLaunch(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('launch')
    .description('train one run data-parallel: --local N starts nats-server, a coordinator and N workers on this host')
    .argument('<config>', 'run config (YAML)')
    .option('--local <n>', 'workers to start on this host')
    .option('--threads-per-worker <n>', 'engine threads of each worker', '1')
    .option('--compression <mode>', 'gradient all-reduce wire format: none, fp16, sign-ef (default: the config\'s train.compression)')
    .option('--nats-server-bin <path>', 'nats-server executable (default: nats-server on PATH, or NATS_SERVER_BIN)')
    .option('--coordinator <host:port>', 'submit to a running cluster instead and follow the run (Ctrl-C cancels it)')
    .option('--workers <n>', 'with --coordinator: how many of its workers train the run')
    .option('--token <secret>', 'with --coordinator: the cluster token (default: BNN_CLUSTER_TOKEN)');
  addClientTlsOptions(cmd);
  addConfigOverrideOptions(cmd)
    .option('--json', 'print the result as one JSON object on stdout (no progress lines)')
    .option('--quiet', 'no progress lines')
    .action(action(ctx, async (configPath: string, raw: LocalClusterFlags) => {
      if (raw.coordinator !== undefined) return launchRemote(configPath, raw, ctx);
      if (raw.local === undefined) throw new UserError('bnn launch needs --local <n> (start a cluster here) or --coordinator <host:port> (submit to a running one)', { exitCode: 2 });
      const parsed = flagsSchema.safeParse(raw);
      if (!parsed.success) throw new UserError(parsed.error.issues.map((i) => i.message.startsWith('--') ? i.message : `--${String(i.path[0])}: ${i.message}`).join('; '), { exitCode: 2 });
      const f = parsed.data;
      const loaded = applyOverrides(await loadConfig(configPath), overridesFromOptions(raw));
      // --compression overrides the config's train.compression (and is recorded with the run's config)
      const config = f.compression ? { ...loaded, train: { ...loaded.train, compression: f.compression } } : loaded;
      const say = (line: string) => { if (!raw.quiet && !raw.json) ctx.io.stderr.write(`${line}\n`); };
      const { startLocalCluster } = await import('../../launch/local-cluster.js');
      const { connectCoordinator } = await import('../../rpc/index.js');

      let runEnded = false;
      let workerFailure: string | null = null;
      let interrupted = false;
      let failedHere = false;
      const t0 = performance.now();
      const cluster = await startLocalCluster({
        workers: f.local, threadsPerWorker: f.threadsPerWorker, backend: config.engine.backend, store: config.store,
        ...(raw.natsServerBin ? { natsServerBin: raw.natsServerBin } : {}),
        log: (line) => { if (!raw.quiet) ctx.io.stderr.write(`${line}\n`); },
        onWorkerExit: (i, code) => { if (code !== 0 && !runEnded) workerFailure ??= `worker ${i} exited with ${code === null ? 'a signal' : `code ${code}`}`; },
      });
      const client = connectCoordinator(cluster.coordinator, { token: cluster.token });
      const watch = client.watchCluster({ run_id: '' });
      let runId = '';
      const onSigint = () => {
        interrupted = true;
        if (runId) void client.cancelRun({ run_id: runId }).catch(() => undefined);
        else watch.cancel();
      };
      process.once('SIGINT', onSigint);
      const epochs: EpochEvent[] = [];
      let status: Terminal = 'FAILED';
      let error = '';
      // A worker that dies in a running run fails it (the coordinator sees its stream close); one
      // that dies before the run started would leave it PENDING forever: cancel it then.
      const failTimer = setInterval(() => {
        const why = workerFailure;
        if (!why || !runId || runEnded) return;
        workerFailure = null;
        void client.getRun({ run_id: runId }).then((info) => {
          if (info.status !== 'PENDING') return;
          error = why;
          failedHere = true;
          return client.cancelRun({ run_id: runId });
        }).catch(() => undefined);
      }, 500);
      try {
        await client.waitForReady(30_000);
        const info = await client.submitRun({ config_json: JSON.stringify(config), workers: f.local, config_path: configPath, compression: config.train.compression });
        runId = info.run_id;
        say(`bnn: run ${runId} (${config.name}): ${config.model.arch} ${config.model.precision}, ${f.local} local worker(s), ` +
          `coordinator ${cluster.coordinator}, nats ${cluster.natsUrl}`);
        if (cluster.dashboard) say(`bnn: dashboard ${cluster.dashboard} (Prometheus metrics at ${cluster.dashboard}metrics)`);
        const result = await followRun(client, watch, runId, say, () => interrupted);
        runEnded = true;
        status = result.status;
        error ||= result.error;
        epochs.push(...result.epochs);
      } finally {
        runEnded = true;
        clearInterval(failTimer);
        process.removeListener('SIGINT', onSigint);
        watch.cancel();
        client.close();
        await cluster.stop(10_000);
      }
      const wallTimeS = (performance.now() - t0) / 1000;
      const last = epochs.at(-1);
      if (raw.json) {
        ctx.io.stdout.write(`${JSON.stringify({ runId, status, error: error || null, workers: f.local, coordinator: cluster.coordinator, wallTimeS, finalTestAcc: last?.testAcc ?? null, epochs })}\n`);
      } else if (!raw.quiet) {
        ctx.io.stdout.write(`run ${runId} ${status}${error ? ` (${error})` : ''} in ${wallTimeS.toFixed(1)} s` +
          (last?.testAcc != null ? `; final test accuracy ${pct(last.testAcc)}` : '') + '\n');
      }
      if (runId && status !== 'COMPLETED' && !raw.json) ctx.io.stderr.write(`${resumeHint(runId, config.store)}\n`);
      return failedHere ? 1 : EXIT[status] ?? 1;
    }));
}
