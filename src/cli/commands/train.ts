import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { applyOverrides } from '../../config/overrides.js';
import { action, type CommandContext } from '../command.js';
import { addConfigOverrideOptions, overridesFromOptions } from '../options.js';

interface TrainFlags extends Record<string, unknown> {
  json?: boolean;
  quiet?: boolean;
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
    .action(
      action(ctx, async (configPath: string, flags: TrainFlags) => {
        // Validate everything before any I/O beyond reading the file: a bad config must
        // leave the store untouched.
        const config = applyOverrides(await loadConfig(configPath), overridesFromOptions(flags));
        // Loaded here, so `bnn --help` and config errors never pay for the engine.
        const { trainHere } = await import('../train-here.js');
        return trainHere(config, { json: flags.json === true, quiet: flags.quiet === true, configPath }, ctx.io);
      }),
    );
}
