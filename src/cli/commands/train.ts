import type { Command } from 'commander';
import { z } from 'zod';
import { numberFlag, parseFlags } from '../../config/flags.js';
import { loadConfig } from '../../config/load.js';
import { applyOverrides } from '../../config/overrides.js';
import { action, type CommandContext } from '../command.js';
import { addConfigOverrideOptions, overridesFromOptions } from '../options.js';
import { DEFAULT_LOCK_TIMEOUT_MS } from '../../store/db.js';

const flagsSchema = z.object({ lockTimeoutMs: numberFlag(z.number().int().min(0)).default(DEFAULT_LOCK_TIMEOUT_MS) });

interface TrainFlags extends Record<string, unknown> {
  json?: boolean;
  quiet?: boolean;
  lockTimeoutMs?: string;
}

/** `bnn train <config.yaml>`: one process, no coordinator; the run is recorded in the store. */
export function registerTrain(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('train')
    .description('train one model in this process and record the run in the experiment database')
    .argument('<config>', 'run config (YAML)');
  addConfigOverrideOptions(cmd)
    .option('--json', 'print the result as JSON on stdout (no progress output)')
    .option('--quiet', 'no progress output')
    .option(
      '--lock-timeout-ms <ms>',
      "how long to wait for another process's lock on the store (epoch metrics are kept meanwhile)",
      String(DEFAULT_LOCK_TIMEOUT_MS),
    )
    .action(
      action(ctx, async (configPath: string, flags: TrainFlags) => {
        const { lockTimeoutMs } = parseFlags(flagsSchema, flags);
        // Validate everything before any I/O beyond reading the file: a bad config must
        // leave the store untouched.
        const config = applyOverrides(await loadConfig(configPath), overridesFromOptions(flags));
        // Loaded here, so `bnn --help` and config errors never pay for the engine.
        const { trainHere } = await import('../train-here.js');
        return trainHere(
          config,
          { json: flags.json === true, quiet: flags.quiet === true, configPath, lockTimeoutMs, log: ctx.log },
          ctx.io,
        );
      }),
    );
}
