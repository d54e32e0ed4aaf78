import { Command } from 'commander';
import { z } from 'zod';
import { ENV, envOption } from '../config/environment.js';
import { choiceFlag, FlagError, namingEnvSources, parseFlags } from '../config/flags.js';
import { packageVersion } from '../config/package-info.js';
import { createLogger, LOG_FORMATS } from '../util/log.js';
import { registerBench } from './commands/bench.js';
import { registerBenchAllreduce } from './commands/bench-allreduce.js';
import { registerBenchScaling } from './commands/bench-scaling.js';
import { registerBenchStore } from './commands/bench-store.js';
import { registerCancel } from './commands/cancel.js';
import { registerBenchCheckpoint } from './commands/bench-checkpoint.js';
import { registerCompare } from './commands/compare.js';
import { registerCoordinator } from './commands/coordinator.js';
import { registerExport } from './commands/export.js';
import { registerLaunch } from './commands/launch.js';
import { registerMonitor } from './commands/monitor.js';
import { registerResume } from './commands/resume.js';
import { registerPredict } from './commands/predict.js';
import { registerReport } from './commands/report.js';
import { registerRuns } from './commands/runs.js';
import { registerRm } from './commands/rm.js';
import { registerGc } from './commands/gc.js';
import { registerShow } from './commands/show.js';
import { registerSql } from './commands/sql.js';
import { registerTrain } from './commands/train.js';
import { registerWorker } from './commands/worker.js';
import { envOfFlag, type CommandContext, type CommandRegistration } from './command.js';

/**
 * Every subcommand, in help order. To add one: write src/cli/commands/<name>.ts exporting
 * a CommandRegistration, and list it here.
 */
export const COMMANDS: readonly CommandRegistration[] = [
  registerTrain,
  registerLaunch,
  registerResume,
  registerCancel,
  registerCoordinator,
  registerWorker,
  registerExport,
  registerPredict,
  registerBench,
  registerBenchAllreduce,
  registerBenchScaling,
  registerBenchCheckpoint,
  registerRuns,
  registerRm,
  registerGc,
  registerShow,
  registerCompare,
  registerSql,
  registerReport,
  registerMonitor,
  registerBenchStore,
];

const programFlags = z.object({ logFormat: choiceFlag(LOG_FORMATS) });

/**
 * The `bnn` program. Commander never exits or prints errors itself: usage errors are
 * thrown (exitOverride) and reported by handleError. `--log-format` belongs to the program and
 * is taken before or after the subcommand; it sets `ctx.log` before the command's action runs.
 */
export function buildProgram(ctx: CommandContext, commands: readonly CommandRegistration[] = COMMANDS): Command {
  const program = new Command('bnn')
    .description('train binarized neural networks and keep every run in an experiment database')
    .version(packageVersion(), '-V, --version')
    .addOption(
      envOption(
        '--log-format <format>',
        `log lines on stderr (coordinator, worker, launch, resume, train): ${LOG_FORMATS.join(' or ')}, json being one object per line`,
        ENV.logFormat,
        'text',
      ),
    )
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      outputError: () => undefined,
    })
    .hook('preAction', (self) => {
      let format: (typeof LOG_FORMATS)[number];
      try {
        format = parseFlags(programFlags, self.opts()).logFormat;
      } catch (err) {
        throw err instanceof FlagError ? namingEnvSources(err, envOfFlag(self)) : err;
      }
      ctx.log = createLogger({ format, write: (s) => ctx.io.stderr.write(s) });
    });
  for (const register of commands) register(program, ctx);
  return program;
}
