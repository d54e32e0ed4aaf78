import type { Command } from 'commander';
import { UserError } from '../util/errors.js';
import { parseMilliseconds } from './flags.js';
import { DEFAULT_STORE_PATH, defaultQueryStoreOptions, type QueryStoreOptions } from './open.js';

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
    .option('--store <file>', 'experiment database', DEFAULT_STORE_PATH)
    .option('--lock-timeout-ms <ms>', 'how long to wait for another process holding a lock', String(defaultQueryStoreOptions().lockTimeoutMs));
}

/**
 * Checks the shared flags before any I/O (exit 2 for `--json --csv`, 1 for a bad timeout).
 * `notice` gets the line saying an older store was upgraded on open (print it on stderr).
 */
export function parseQueryOutputFlags(flags: QueryOutputFlags, notice?: (line: string) => void): QueryCommandOptions {
  if (flags.json === true && flags.csv === true) {
    throw new UserError('--json and --csv: choose one output format', { exitCode: 2 });
  }
  const lockTimeoutMs =
    flags.lockTimeoutMs === undefined
      ? defaultQueryStoreOptions().lockTimeoutMs
      : parseMilliseconds('--lock-timeout-ms', flags.lockTimeoutMs);
  return {
    mode: flags.json === true ? 'json' : flags.csv === true ? 'csv' : 'table',
    storePath: flags.store ?? DEFAULT_STORE_PATH,
    store: { lockTimeoutMs, ...(notice === undefined ? {} : { notice }) },
  };
}

/** JSON for `--json`: one value, pretty-printed, newline-terminated. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
