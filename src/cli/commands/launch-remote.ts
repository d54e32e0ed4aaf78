// `bnn launch --coordinator host:port <config>`: submits one run to a running cluster and follows
// it (WatchCluster, GetRun when the stream drops) with the same epoch lines as `--local`; exits
// with the run's status. Ctrl-C cancels the run (CancelRun) and waits for CANCELLED; a second
// Ctrl-C leaves at once without waiting (the cancel was already sent).
import { z } from 'zod';
import type { RunConfig } from '../../config/index.js';
import { loadConfig } from '../../config/load.js';
import { applyOverrides } from '../../config/overrides.js';
import type { ClientTls, CoordinatorClient, RunInfo } from '../../rpc/index.js';
import { UserError } from '../../util/errors.js';
import type { CommandContext } from '../command.js';
import { overridesFromOptions } from '../options.js';
import { clientTlsFromFlags, type ClientTlsFlags } from '../security-options.js';
import { clusterToken } from './coordinator.js';
import { EXIT, isTerminal, onRunEvent, pct, type EpochEvent, type Terminal, type WatchEvent } from './run-events.js';

export interface RemoteLaunchFlags extends ClientTlsFlags, Record<string, unknown> {
  coordinator?: string;
  local?: string;
  workers?: string;
  token?: string;
  compression?: string;
  connectTimeoutMs?: string;
  json?: boolean;
  quiet?: boolean;
}

const flagsSchema = z.object({
  coordinator: z.string().regex(/^[^:\s]+:\d+$|^\[[^\]]+\]:\d+$/, 'expected host:port'),
  workers: z.coerce.number({ error: () => 'expected a worker count from 1 to 1024' }).int().min(1).max(1024),
  compression: z.enum(['none', 'fp16', 'sign-ef'], { error: () => 'expected none, fp16 or sign-ef' }).optional(),
  connectTimeoutMs: z.coerce.number().int().min(1).default(30_000),
});

export interface FollowResult {
  status: Terminal;
  error: string;
  epochs: EpochEvent[];
}

/**
 * Follows `runId` until it ends: epoch and generation lines through `say`. When the watch stream
 * drops (a coordinator restart, a network blip) it polls GetRun, and gives up after
 * `lostAfterMs` without an answer.
 */
export async function followRun(
  client: CoordinatorClient, runId: string, watch: AsyncIterable<WatchEvent> & { cancel(): void },
  o: { say(line: string): void; stopped(): boolean; lostAfterMs?: number },
): Promise<FollowResult> {
  const epochs: EpochEvent[] = [];
  try {
    for await (const ev of watch) {
      const end = onRunEvent(ev, runId, epochs, o.say);
      if (end) return { ...end, epochs };
    }
  } catch (err) {
    if (o.stopped()) return { status: 'CANCELLED', error: 'detached', epochs };
    o.say(`bnn: lost the watch stream (${(err as Error).message}); polling the run`);
  }
  // The stream ended without the run's end (or we missed it): ask until it answers.
  const lostAfterMs = o.lostAfterMs ?? 60_000;
  let lastOk = Date.now();
  for (;;) {
    if (o.stopped()) return { status: 'CANCELLED', error: 'detached', epochs };
    let info: RunInfo | null = null;
    try {
      info = await client.getRun({ run_id: runId });
      lastOk = Date.now();
    } catch (err) {
      if (Date.now() - lastOk > lostAfterMs) {
        return { status: 'FAILED', error: `lost the coordinator for ${Math.round(lostAfterMs / 1000)} s (${(err as Error).message}); the run may still be going: bnn show ${runId}`, epochs };
      }
    }
    if (info && isTerminal(info.status)) return { status: info.status, error: info.error, epochs };
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** `bnn launch --coordinator host:port --workers N <config>`. */
export async function launchRemote(configPath: string, raw: RemoteLaunchFlags, ctx: CommandContext): Promise<number> {
  if (raw.local !== undefined) throw new UserError('give either --local <n> (start a cluster here) or --coordinator <host:port> (use a running one), not both', { exitCode: 2 });
  if (raw.workers === undefined) throw new UserError('bnn launch --coordinator needs --workers <n>: how many of the cluster\'s workers train the run', { exitCode: 2 });
  const parsed = flagsSchema.safeParse(raw);
  if (!parsed.success) throw new UserError(parsed.error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join('; '), { exitCode: 2 });
  const f = parsed.data;
  const token = clusterToken(raw.token);
  const tls = clientTlsFromFlags(raw);
  const loaded: RunConfig = applyOverrides(await loadConfig(configPath), overridesFromOptions(raw));
  const config = f.compression ? { ...loaded, train: { ...loaded.train, compression: f.compression } } : loaded;
  const say = (line: string) => { if (!raw.quiet && !raw.json) ctx.io.stderr.write(`${line}\n`); };
  return submitAndFollow({ address: f.coordinator, token, tls, config, configPath, workers: f.workers, connectTimeoutMs: f.connectTimeoutMs, say, ctx, json: raw.json === true, quiet: raw.quiet === true });
}

async function submitAndFollow(o: {
  address: string; token: string; tls: ClientTls | null; config: RunConfig; configPath: string; workers: number; connectTimeoutMs: number;
  say(line: string): void; ctx: CommandContext; json: boolean; quiet: boolean;
}): Promise<number> {
  const { connectCoordinator } = await import('../../rpc/index.js');
  const client = connectCoordinator(o.address, { token: o.token, ...(o.tls ? { tls: o.tls } : {}) });
  const t0 = performance.now();
  let runId = '';
  let interrupts = 0;
  let watch: ReturnType<CoordinatorClient['watchCluster']> | null = null;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1 && runId) {
      o.say(`bnn: cancelling run ${runId} (Ctrl-C again to leave without waiting)`);
      void client.cancelRun({ run_id: runId }).catch((err: Error) => o.say(`bnn: CancelRun failed: ${err.message}`));
    } else {
      watch?.cancel();
    }
  };
  process.on('SIGINT', onSigint);
  let result: FollowResult;
  try {
    await client.waitForReady(o.connectTimeoutMs);
    // Watch first, so no event of the new run is missed.
    watch = client.watchCluster({ run_id: '' });
    const info = await client.submitRun({
      config_json: JSON.stringify(o.config), workers: o.workers, config_path: o.configPath, compression: o.config.train.compression,
    });
    runId = info.run_id;
    o.say(`bnn: run ${runId} (${o.config.name}): ${o.config.model.arch} ${o.config.model.precision}, ${o.workers} worker(s) ` +
      `of the cluster at ${o.address}${o.tls ? ' (TLS)' : ''}`);
    if (interrupts > 0) onSigint();
    result = await followRun(client, runId, watch, { say: o.say, stopped: () => interrupts > 1 || (interrupts > 0 && !runId) });
  } finally {
    process.removeListener('SIGINT', onSigint);
    watch?.cancel();
    client.close();
  }
  const wallTimeS = (performance.now() - t0) / 1000;
  const last = result.epochs.at(-1);
  if (o.json) {
    o.ctx.io.stdout.write(`${JSON.stringify({
      runId, status: result.status, error: result.error || null, workers: o.workers, coordinator: o.address, wallTimeS,
      finalTestAcc: last?.testAcc ?? null, epochs: result.epochs,
    })}\n`);
  } else if (!o.quiet) {
    o.ctx.io.stdout.write(`run ${runId} ${result.status}${result.error ? ` (${result.error})` : ''} in ${wallTimeS.toFixed(1)} s` +
      (last?.testAcc != null ? `; final test accuracy ${pct(last.testAcc)}` : '') + '\n');
  }
  return EXIT[result.status];
}
