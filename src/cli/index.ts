import { Command } from 'commander';
import { packageVersion } from '../config/package-info.js';
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
import type { CommandContext, CommandRegistration } from './command.js';

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

/**
 * The `bnn` program. Commander never exits or prints errors itself: usage errors are
 * thrown (exitOverride) and reported by handleError.
 */
export function buildProgram(ctx: CommandContext, commands: readonly CommandRegistration[] = COMMANDS): Command {
  const program = new Command('bnn')
    .description('train binarized neural networks and keep every run in an experiment database')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      outputError: () => undefined,
    });
  for (const register of commands) register(program, ctx);
  return program;
}
