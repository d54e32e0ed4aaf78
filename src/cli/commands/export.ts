import path from 'node:path';
import { rmSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { action, type CommandContext } from '../command.js';
import { fileFlag, parseFlags } from '../../config/flags.js';
import { cliCheckpointStores, natsTarget } from '../checkpoint-files.js';
import { addNatsAuthOptions, type NatsAuthFlags } from '../security-options.js';
import { ENV, envOption } from '../../config/environment.js';

interface ExportFlags extends NatsAuthFlags {
  store: string;
  nats?: string;
  out?: string;
  fp32Out?: string;
  json?: boolean;
}

const flagsSchema = z.object({
  store: fileFlag,
  out: fileFlag.optional(),
  fp32Out: fileFlag.optional(),
  nats: z.string().min(1).optional(),
});

/** `bnn export <run>`: the run's model with binary weights packed 1 bit each. */
export function registerExport(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('export')
    .description("write a run's trained model with binary weights packed 1 bit each, and compare its size with FP32")
    .argument('<run>', 'run id (or a unique prefix)')
    .addOption(envOption('--store <file>', 'experiment database', ENV.store, './runs/bnn.db'))
    .option('--out <file>', 'packed model file (default: runs/models/<run>.bnnpack)')
    .option('--fp32-out <file>', 'also keep the FP32 version of the same model here')
    .option('--json', 'print the result as JSON')
    .option('--nats <url>', "NATS server holding the run's checkpoints when they are in its object store (nats-os://…)");
  addNatsAuthOptions(cmd, 'worker').action(
    action(ctx, async (runId: string, raw: ExportFlags, command: Command) => {
      const flags = { ...raw, ...parseFlags(flagsSchema, raw) };
      const { initEngine } = await import('../../engine/select.js');
      const { openStore, storeErrorFrom } = await import('../../store/index.js');
      const { restoreModelFromRun } = await import('../../export/from-run.js');
      const { writePackedModel } = await import('../../export/packed.js');
      await initEngine({ backend: 'cpu', threads: 1 });
      const store = openStore(flags.store, { readonly: true });
      const stores = cliCheckpointStores(natsTarget(raw, flags.nats, command));
      try {
        const r = await restoreModelFromRun(store.db, runId, (location, sha256) => stores.readCheckpoint(location, sha256)).catch(
          (err: unknown) => {
            throw storeErrorFrom(store.path, err, { waitedMs: store.busyTimeoutMs });
          },
        );
        const out = path.resolve(flags.out ?? path.join('runs', 'models', `${r.runId}.bnnpack`));
        const meta = { runId: r.runId, checkpoint: r.checkpointPath };
        const packed = await writePackedModel(out, r.model, r.normalization, meta);
        const fp32Path = path.resolve(flags.fp32Out ?? `${out}.fp32.tmp`);
        const fp32 = await writePackedModel(fp32Path, r.model, r.normalization, meta, true);
        if (!flags.fp32Out) rmSync(fp32Path);
        const ratio = fp32.bytes / packed.bytes;
        const result = {
          runId: r.runId,
          out,
          bytes: packed.bytes,
          sha256: packed.sha256,
          fp32Bytes: fp32.bytes,
          fp32Out: flags.fp32Out ? fp32Path : null,
          ratio,
          precision: r.model.spec.precision,
          epoch: r.meta.epoch,
        };
        if (flags.json) ctx.io.stdout.write(`${JSON.stringify(result)}\n`);
        else {
          ctx.io.stdout.write(
            `wrote ${out}\n  packed: ${packed.bytes.toLocaleString('en-US')} bytes\n` +
              `  fp32:   ${fp32.bytes.toLocaleString('en-US')} bytes (same model, FP32 weights)\n` +
              `  ${ratio.toFixed(1)}x smaller\n`,
          );
        }
        r.model.dispose();
        return 0;
      } finally {
        await stores.close();
        store.close();
      }
    }),
  );
}
