import { ARCHS, DATASET_NAMES, PRECISIONS } from '../config/schema.js';
import type { StoreDb } from '../store/db.js';
import { RUN_SORT_KEYS as SORT_KEYS, type RunFilter, type RunsQuery, type RunSortKey as SortKey } from '../store/run-queries.js';
import { RUN_STATUSES } from '../store/schema.js';
import { getRun } from '../store/runs.js';
import { QueryFlagError } from './errors.js';
import { endExclusive, parseChoice, parseChoices, parseDateBound, parsePositiveInt, parseTag } from './flags.js';

// The queries themselves live in the store (src/store/run-queries.ts); this module parses flags into them.
export { queryRuns, runsStatement } from '../store/run-queries.js';
export { SORT_KEYS, type RunFilter, type RunsQuery, type SortKey };

export const DEFAULT_RUNS_LIMIT = 50;

export function defaultRunsQuery(): RunsQuery {
  return { sort: 'created', descending: true, limit: DEFAULT_RUNS_LIMIT };
}

/** The filter flags as typed on the command line (strings, all optional). */
export interface RunFilterFlags {
  status?: string;
  model?: string;
  precision?: string;
  dataset?: string;
  tag?: string;
  since?: string;
  until?: string;
  name?: string;
}

export interface RunsQueryFlags extends RunFilterFlags {
  sort?: string;
  desc?: boolean;
  asc?: boolean;
  limit?: string;
}

/**
 * Validates filter flags before any I/O. `--until` with a bare date includes that whole
 * UTC day. Throws QueryFlagError (exit 1) naming the flag, its value and the valid values.
 */
export function parseRunFilter(flags: RunFilterFlags): RunFilter {
  const filter: RunFilter = {};
  if (flags.status !== undefined) filter.statuses = parseChoices('--status', flags.status, RUN_STATUSES);
  if (flags.model !== undefined) filter.model = parseChoice('--model', flags.model, ARCHS);
  if (flags.precision !== undefined) filter.precision = parseChoice('--precision', flags.precision, PRECISIONS);
  if (flags.dataset !== undefined) filter.dataset = parseChoice('--dataset', flags.dataset, DATASET_NAMES);
  if (flags.tag !== undefined) filter.tag = parseTag('--tag', flags.tag);
  if (flags.since !== undefined) filter.createdSince = parseDateBound('--since', flags.since).iso;
  if (flags.until !== undefined) filter.createdBefore = endExclusive(parseDateBound('--until', flags.until));
  if (flags.name !== undefined) filter.nameContains = flags.name;
  return filter;
}

export function parseRunsQuery(flags: RunsQueryFlags): RunsQuery {
  const filter = parseRunFilter(flags);
  const sort = flags.sort === undefined ? 'created' : parseChoice('--sort', flags.sort, SORT_KEYS);
  const descending = flags.desc === true || (flags.sort === undefined && flags.asc !== true);
  const limit = flags.limit === undefined ? DEFAULT_RUNS_LIMIT : parsePositiveInt('--limit', flags.limit);
  return { ...filter, sort, descending, limit };
}

/**
 * Full run ids for ids or unique id prefixes as typed (`--runs a,b`), in the order given,
 * without duplicates. RunNotFoundError names the first that matches no run or several.
 */
export function resolveRunIds(db: StoreDb, idsOrPrefixes: readonly string[]): string[] {
  return [...new Set(idsOrPrefixes.map((id) => getRun(db, id).id))];
}

/** `--runs a,b,c` split into ids or prefixes; QueryFlagError (exit 1) for an empty list. */
export function parseRunIdList(flag: string, value: string): string[] {
  const ids = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (ids.length === 0) throw new QueryFlagError(flag, value, 'a comma-separated list of run ids or id prefixes');
  return ids;
}
