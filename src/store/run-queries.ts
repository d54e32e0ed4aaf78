import { and, asc, desc, eq, gte, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { RUN_STATUSES, runs, type RunRow, type RunStatus } from './schema.js';

/**
 * The statuses the query commands show: the stored ones, and ABANDONED for a PENDING or
 * RUNNING run whose owner process is gone. ABANDONED is never stored (its truth changes
 * when a process exits, and readers must not write): src/query/liveness.ts finds those runs.
 */
export const SHOWN_STATUSES = [...RUN_STATUSES, 'ABANDONED'] as const;
export type ShownStatus = (typeof SHOWN_STATUSES)[number];

/** Columns the run listing can sort by, by the name the user types (`bnn runs --sort`). */
export const RUN_SORT_KEYS = ['created', 'finished', 'final_test_acc', 'samples_per_s', 'wall_time_s', 'name'] as const;
export type RunSortKey = (typeof RUN_SORT_KEYS)[number];

const SORT_COLUMNS = {
  created: runs.createdAt,
  finished: runs.finishedAt,
  final_test_acc: runs.finalTestAcc,
  samples_per_s: runs.samplesPerS,
  wall_time_s: runs.wallTimeS,
  name: runs.name,
} as const satisfies Record<RunSortKey, unknown>;

/** Which runs to select; every field optional, all given ones must hold. */
export interface RunFilter {
  /** As shown: ABANDONED selects the `abandonedIds`, and a stored status excludes them. */
  statuses?: readonly ShownStatus[];
  /** The runs shown as ABANDONED (full ids); only `statuses` reads it. */
  abandonedIds?: readonly string[];
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
  sort: RunSortKey;
  /** Default true for `created` without a sort flag (newest first), else false. */
  descending: boolean;
  /** At most this many runs; default 50. */
  limit: number;
}

/** The WHERE conditions for a filter (shared by `runs` and `compare`). */
function runFilterConditions(filter: RunFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.statuses !== undefined && filter.statuses.length > 0) where.push(statusCondition(filter.statuses, filter.abandonedIds ?? []));
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

/** Runs with one of the shown statuses: a stored one unless abandoned, or ABANDONED. */
function statusCondition(statuses: readonly ShownStatus[], abandonedIds: readonly string[]): SQL {
  const stored = statuses.filter((s): s is RunStatus => s !== 'ABANDONED');
  // json_each keeps one bound parameter however many ids there are (SQLite caps parameters).
  const abandoned = sql`${runs.id} IN (SELECT value FROM json_each(${JSON.stringify(abandonedIds)}))`;
  const conditions: SQL[] = [];
  if (stored.length > 0) {
    const plain = inArray(runs.status, stored);
    conditions.push(abandonedIds.length === 0 ? plain : and(plain, sql`NOT ${abandoned}`)!);
  }
  if (stored.length < statuses.length) conditions.push(abandoned);
  return conditions.length === 1 ? conditions[0]! : or(...conditions)!;
}

/** The WHERE conditions of a comparison: COMPLETED runs matching the filter (run ids already resolved). */
export function completedRunConditions(filter: RunFilter): SQL[] {
  return [eq(runs.status, 'COMPLETED'), ...runFilterConditions(filter)];
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

/** Every COMPLETED run matching the filter, whole rows, in no particular order. */
export function listCompletedRuns(db: StoreDb, filter: RunFilter): RunRow[] {
  return db
    .select()
    .from(runs)
    .where(and(...completedRunConditions(filter)))
    .all();
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}
