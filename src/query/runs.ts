import { z } from 'zod';
import { choiceFlag, listFlag, numberFlag, parseFlags } from '../config/flags.js';
import { ARCHS, DATASET_NAMES, PRECISIONS } from '../config/schema.js';
import type { StoreDb } from '../store/db.js';
import {
  queryRuns,
  RUN_SORT_KEYS as SORT_KEYS,
  SHOWN_STATUSES,
  type RunFilter,
  type RunsQuery,
  type RunSortKey as SortKey,
} from '../store/run-queries.js';
import { getRun } from '../store/runs.js';
import { dateBoundFlag, endExclusive, tagFlag } from './flags.js';
import { abandonedRunIds, filterNeedsAbandoned, shownRuns, type ShownRun } from './liveness.js';

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

/** The filter flags' schema (for parseFlags, src/config/flags.ts), shared by `runs`, `compare` and `report`. */
export const runFilterFlags = z.object({
  status: listFlag(choiceFlag(SHOWN_STATUSES), { unique: true }).optional(),
  model: choiceFlag(ARCHS).optional(),
  precision: choiceFlag(PRECISIONS).optional(),
  dataset: choiceFlag(DATASET_NAMES).optional(),
  tag: tagFlag.optional(),
  since: dateBoundFlag.optional(),
  until: dateBoundFlag.optional(),
  name: z.string().optional(),
});

/** The filter the checked flags select; `--until` with a bare date includes that whole UTC day. */
export function runFilterOf(flags: z.output<typeof runFilterFlags>): RunFilter {
  const filter: RunFilter = {};
  if (flags.status !== undefined) filter.statuses = flags.status;
  if (flags.model !== undefined) filter.model = flags.model;
  if (flags.precision !== undefined) filter.precision = flags.precision;
  if (flags.dataset !== undefined) filter.dataset = flags.dataset;
  if (flags.tag !== undefined) filter.tag = flags.tag;
  if (flags.since !== undefined) filter.createdSince = flags.since.iso;
  if (flags.until !== undefined) filter.createdBefore = endExclusive(flags.until);
  if (flags.name !== undefined) filter.nameContains = flags.name;
  return filter;
}

/** `bnn runs`' query flags' schema: the filter, the sort and the limit. */
export const runsQueryFlags = runFilterFlags.extend({
  sort: choiceFlag(SORT_KEYS).optional(),
  desc: z.boolean().optional(),
  asc: z.boolean().optional(),
  limit: numberFlag(z.number().int().min(1)).default(DEFAULT_RUNS_LIMIT),
});

export function runsQueryOf(flags: z.output<typeof runsQueryFlags>): RunsQuery {
  const descending = flags.desc === true || (flags.sort === undefined && flags.asc !== true);
  return { ...runFilterOf(flags), sort: flags.sort ?? 'created', descending, limit: flags.limit };
}

/**
 * `bnn runs`: the runs the query selects, as shown (ABANDONED where the owner of a PENDING or
 * RUNNING run is gone; a status filter selects by the status shown).
 */
export function queryShownRuns(db: StoreDb, query: RunsQuery): ShownRun[] {
  const abandonedIds = filterNeedsAbandoned(query.statuses) ? abandonedRunIds(db) : [];
  return shownRuns(db, queryRuns(db, { ...query, abandonedIds }));
}

/** Checks `bnn runs` flags before any I/O: FlagError (exit 2) naming each bad flag, its value and what is valid. */
export function parseRunsQuery(flags: RunsQueryFlags): RunsQuery {
  return runsQueryOf(parseFlags(runsQueryFlags, flags));
}

/**
 * Full run ids for ids or unique id prefixes as typed (`--runs a,b`), in the order given,
 * without duplicates. RunNotFoundError names the first that matches no run or several.
 */
export function resolveRunIds(db: StoreDb, idsOrPrefixes: readonly string[]): string[] {
  return [...new Set(idsOrPrefixes.map((id) => getRun(db, id).id))];
}
