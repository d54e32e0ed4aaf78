import type { Command } from 'commander';
import { z } from 'zod';
import { fileFlag, numberFlag, parseFlags } from '../config/flags.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_STORE_PATH, defaultQueryStoreOptions, type QueryStoreOptions } from './open.js';
import { ENV, envOption } from '../config/environment.js';

/** The output and store flags every query command takes. */
export interface QueryOutputFlags {
  json?: boolean;
  csv?: boolean;
  store?: string;
  lockTimeoutMs?: string;
}

export type OutputMode = 'table' | 'json' | 'csv';

export interface QueryCommandOptions {
  mode: OutputMode;
  /** Database file (not yet checked to exist). */
  storePath: string;
  store: QueryStoreOptions & { lockTimeoutMs: number };
}

/** Adds `--json`, `--csv`, `--store <file>` and `--lock-timeout-ms <ms>` to a query command. */
export function addQueryOutputOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print JSON on stdout')
    .option('--csv', 'print CSV on stdout')
    .addOption(envOption('--store <file>', 'experiment database', ENV.store, DEFAULT_STORE_PATH))
    .option(
      '--lock-timeout-ms <ms>',
      'how long to wait for another process holding a lock',
      String(defaultQueryStoreOptions().lockTimeoutMs),
    );
}

/** The shared flags' schema (for parseFlags, src/config/flags.ts); a command extends it with its own. */
export const queryOutputFlags = z.object({
  json: z.boolean().optional(),
  csv: z.boolean().optional(),
  store: fileFlag.default(DEFAULT_STORE_PATH),
  lockTimeoutMs: numberFlag(z.number().int().min(0)).default(defaultQueryStoreOptions().lockTimeoutMs),
});

/**
 * The output options of checked flags; `--json` with `--csv` is bad usage (exit 2). `notice`
 * gets the line saying an older store was upgraded on open (print it on stderr).
 */
export function queryOutputOf(flags: z.output<typeof queryOutputFlags>, notice?: (line: string) => void): QueryCommandOptions {
  if (flags.json === true && flags.csv === true) {
    throw new UserError('--json and --csv: choose one output format', { exitCode: 2 });
  }
  return {
    mode: flags.json === true ? 'json' : flags.csv === true ? 'csv' : 'table',
    storePath: flags.store,
    store: { lockTimeoutMs: flags.lockTimeoutMs, ...(notice === undefined ? {} : { notice }) },
  };
}

/** Checks the flags of a command that has only the shared ones (`show`, `sql`), before any I/O. */
export function parseQueryOutputFlags(flags: QueryOutputFlags, notice?: (line: string) => void): QueryCommandOptions {
  return queryOutputOf(parseFlags(queryOutputFlags, flags), notice);
}

/** JSON for `--json`: one value, pretty-printed, newline-terminated. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
