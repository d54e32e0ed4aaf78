import { and, asc, desc, eq, gte, inArray, lt, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import { choiceFlag, listFlag, numberFlag, parseFlags } from '../cli/flags.js';
import { ARCHS, DATASET_NAMES, PRECISIONS } from '../config/schema.js';
import type { StoreDb } from '../store/db.js';
import { RUN_STATUSES, runs, type RunRow, type RunStatus } from '../store/schema.js';
import { getRun } from '../store/runs.js';
import { dateBoundFlag, endExclusive, tagFlag } from './flags.js';

/** Columns `bnn runs --sort` accepts, by the name the user types. */
export const SORT_KEYS = ['created', 'finished', 'final_test_acc', 'samples_per_s', 'wall_time_s', 'name'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

const SORT_COLUMNS = {
  created: runs.createdAt,
  finished: runs.finishedAt,
  final_test_acc: runs.finalTestAcc,
  samples_per_s: runs.samplesPerS,
  wall_time_s: runs.wallTimeS,
  name: runs.name,
} as const satisfies Record<SortKey, unknown>;

/** Which runs to select; every field optional, all given ones must hold. */
export interface RunFilter {
  statuses?: readonly RunStatus[];
  /** Architecture (`model.arch`). */
  model?: string;
  precision?: string;
  dataset?: string;
  /** Runs carrying this tag. */
  tag?: string;
  /** Created at or after this ISO time. */
  createdSince?: string;
  /** Created before this ISO time (exclusive). */
  createdBefore?: string;
  /** Case-insensitive substring of the run name. */
  nameContains?: string;
  /** Exactly these run ids (full ids; resolve prefixes with resolveRunIds first). */
  ids?: readonly string[];
}

export interface RunsQuery extends RunFilter {
  /** Default `created`. */
  sort: SortKey;
  /** Default true for `created` without a sort flag (newest first), else false. */
  descending: boolean;
  /** At most this many runs; default 50. */
  limit: number;
}

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

/** The filter flags' schema (for parseFlags, src/cli/flags.ts), shared by `runs`, `compare` and `report`. */
export const runFilterFlags = z.object({
  status: listFlag(choiceFlag(RUN_STATUSES), { unique: true }).optional(),
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

/** Checks `bnn runs` flags before any I/O: FlagError (exit 2) naming each bad flag, its value and what is valid. */
export function parseRunsQuery(flags: RunsQueryFlags): RunsQuery {
  return runsQueryOf(parseFlags(runsQueryFlags, flags));
}

/** The WHERE conditions for a filter (shared by `runs` and `compare`). */
export function runFilterConditions(filter: RunFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.statuses !== undefined && filter.statuses.length > 0) where.push(inArray(runs.status, [...filter.statuses]));
  if (filter.model !== undefined) where.push(eq(runs.model, filter.model));
  if (filter.precision !== undefined) where.push(eq(runs.precision, filter.precision));
  if (filter.dataset !== undefined) where.push(eq(runs.dataset, filter.dataset));
  if (filter.tag !== undefined) {
    where.push(sql`EXISTS (SELECT 1 FROM json_each(${runs.tags}) WHERE json_each.value = ${filter.tag})`);
  }
  if (filter.createdSince !== undefined) where.push(gte(runs.createdAt, filter.createdSince));
  if (filter.createdBefore !== undefined) where.push(lt(runs.createdAt, filter.createdBefore));
  if (filter.nameContains !== undefined) {
    where.push(sql`${runs.name} LIKE ${`%${escapeLike(filter.nameContains)}%`} ESCAPE '\\'`);
  }
  if (filter.ids !== undefined) {
    // json_each keeps one bound parameter however many ids there are (SQLite caps parameters).
    where.push(sql`${runs.id} IN (SELECT value FROM json_each(${JSON.stringify(filter.ids)}))`);
  }
  return where;
}

/** Runs matching the query's filters, sorted (missing values last in either direction), at most `limit`. */
export function queryRuns(db: StoreDb, query: RunsQuery): RunRow[] {
  return runsStatement(db, query).all();
}

/** The statement queryRuns runs (for `toSQL()` and query plans). */
export function runsStatement(db: StoreDb, query: RunsQuery) {
  const column = SORT_COLUMNS[query.sort];
  const direction = query.descending ? desc : asc;
  // `IS NULL` first only for nullable columns: on a NOT NULL column it is always false, and
  // leaving it out lets SQLite walk an index in order instead of sorting every row.
  const nullsLast = column.notNull ? [] : [sql`${column} IS NULL`];
  return db
    .select()
    .from(runs)
    .where(and(...runFilterConditions(query)))
    .orderBy(...nullsLast, direction(column), direction(runs.id))
    .limit(query.limit);
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Full run ids for ids or unique id prefixes as typed (`--runs a,b`), in the order given,
 * without duplicates. RunNotFoundError names the first that matches no run or several.
 */
export function resolveRunIds(db: StoreDb, idsOrPrefixes: readonly string[]): string[] {
  return [...new Set(idsOrPrefixes.map((id) => getRun(db, id).id))];
}
