import { and, count, desc, eq, gte, inArray, lt, sql, type SQL } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import { configHash } from '../config/hash.js';
import { codeVersion as currentCodeVersion } from '../config/package-info.js';
import type { RunConfig } from '../config/schema.js';
import type { ProcessOwner } from '../util/process-owner.js';
import type { StoreDb } from './db.js';
import { AMBIGUOUS_LIST_LIMIT, RunNotFoundError, RunStateError } from './errors.js';
import { events, RUN_STATUSES, runs, type RunRow, type RunStatus } from './schema.js';
import { isoTime } from './time.js';

/** `r-<yyyymmdd>-<hhmmss>-<4 hex>` in UTC: sortable by creation time, short to type. */
export function newRunId(now: Date = new Date()): string {
  const iso = now.toISOString();
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  return `r-${date}-${time}-${randomBytes(2).toString('hex')}`;
}

export interface CreateRunInput {
  config: RunConfig;
  /** Defaults to the package version plus git sha. */
  codeVersion?: string;
  /** Config file the run was loaded from; recorded in the `created` event. */
  configPath?: string;
  /** The process that will run it (`bnn train`, or the coordinator); recorded so a later command can tell when it is gone. */
  owner?: ProcessOwner;
  now?: Date;
}

/** The owner columns of a run row for `owner`. */
function ownerColumns(owner: ProcessOwner): Pick<RunRow, 'ownerHost' | 'ownerPid' | 'ownerStart'> {
  return { ownerHost: owner.host, ownerPid: owner.pid, ownerStart: owner.start };
}

/** The owner recorded with a run, or null (a run recorded before schema 5). */
export function runOwner(row: Pick<RunRow, 'ownerHost' | 'ownerPid' | 'ownerStart'>): ProcessOwner | null {
  if (row.ownerHost === null || row.ownerPid === null) return null;
  return { host: row.ownerHost, pid: row.ownerPid, start: row.ownerStart };
}

function sameOwner(a: ProcessOwner, b: ProcessOwner | undefined): boolean {
  return b !== undefined && a.host === b.host && a.pid === b.pid && a.start === b.start;
}

/** Inserts a PENDING run (and its `created` event) and returns the row. */
export function createRun(db: StoreDb, input: CreateRunInput): RunRow {
  const now = input.now ?? new Date();
  const { config } = input;
  for (let attempt = 0; ; attempt++) {
    const row = {
      id: newRunId(now),
      name: config.name,
      tags: config.tags,
      config,
      configHash: configHash(config),
      precision: config.model.precision,
      model: config.model.arch,
      dataset: config.dataset.name,
      seed: config.seed,
      status: 'PENDING' as const,
      codeVersion: input.codeVersion ?? currentCodeVersion(),
      backend: config.engine.backend,
      threads: config.engine.threads,
      createdAt: isoTime(now),
      ...(input.owner ? ownerColumns(input.owner) : {}),
    };
    try {
      return db.transaction((tx) => {
        const created = tx.insert(runs).values(row).returning().get();
        tx.insert(events)
          .values({
            runId: created.id,
            at: created.createdAt,
            kind: 'created',
            detail: input.configPath === undefined ? {} : { configPath: input.configPath },
          })
          .run();
        return created;
      });
    } catch (err) {
      // Two runs created in the same second drew the same 4 hex digits: draw again.
      const code = (err as { code?: string }).code;
      if (code !== 'SQLITE_CONSTRAINT_PRIMARYKEY' || attempt >= 8) throw err;
    }
  }
}

export interface StartRunInput {
  /** The backend actually in use (after `auto` was resolved). */
  backend: string;
  /** Threads actually in use. */
  threads: number;
  /** The process running it from now on (replaces the one recorded). */
  owner?: ProcessOwner;
  now?: Date;
}

/**
 * Marks a run RUNNING. From PENDING this is its start; from FAILED, CANCELLED or a stale
 * RUNNING (a crashed process) it is a resume, recorded as a `resumed` event naming the owner
 * it takes over from. A COMPLETED run cannot be restarted.
 */
export function markRunning(db: StoreDb, id: string, input: StartRunInput): RunRow {
  const at = isoTime(input.now ?? new Date());
  return db.transaction((tx) => {
    const current = tx.select().from(runs).where(eq(runs.id, id)).get();
    if (!current) throw new RunNotFoundError(id);
    if (current.status === 'COMPLETED') throw new RunStateError(id, current.status, 'RUNNING');
    const updated = tx
      .update(runs)
      .set({
        status: 'RUNNING',
        backend: input.backend,
        threads: input.threads,
        startedAt: current.startedAt ?? at,
        finishedAt: null,
        error: null,
        ...(input.owner ? ownerColumns(input.owner) : {}),
      })
      .where(eq(runs.id, id))
      .returning()
      .get();
    // From RUNNING: the process it takes over from (gone, or it would not be resumed).
    const previous = runOwner(current);
    const takenOver = current.status === 'RUNNING' && previous !== null && !sameOwner(previous, input.owner);
    const stale = takenOver ? { previousOwner: previous } : {};
    tx.insert(events)
      .values({
        runId: id,
        at,
        kind: current.status === 'PENDING' ? 'started' : 'resumed',
        detail: { from: current.status, backend: input.backend, threads: input.threads, ...stale },
      })
      .run();
    return updated;
  });
}

/**
 * Records `owner` as the process that runs a run from now on, without changing its status
 * (a coordinator that takes a run over to resume it, before its workers start it). RunStateError
 * for a COMPLETED run.
 */
export function claimRun(db: StoreDb, id: string, owner: ProcessOwner): RunRow {
  return db.transaction((tx) => {
    const current = tx.select({ status: runs.status }).from(runs).where(eq(runs.id, id)).get();
    if (!current) throw new RunNotFoundError(id);
    if (current.status === 'COMPLETED') throw new RunStateError(id, current.status, 'RUNNING');
    return tx.update(runs).set(ownerColumns(owner)).where(eq(runs.id, id)).returning().get();
  });
}

/** The id, status and owner of every PENDING or RUNNING run (the runs an owner may have left behind). */
export function activeRunOwners(db: StoreDb): Pick<RunRow, 'id' | 'status' | 'ownerHost' | 'ownerPid' | 'ownerStart'>[] {
  return db
    .select({ id: runs.id, status: runs.status, ownerHost: runs.ownerHost, ownerPid: runs.ownerPid, ownerStart: runs.ownerStart })
    .from(runs)
    .where(inArray(runs.status, ['PENDING', 'RUNNING']))
    .all();
}

export type FinalStatus = Extract<RunStatus, 'COMPLETED' | 'FAILED' | 'CANCELLED'>;

export interface RunResults {
  /** Test accuracy after the last epoch, as a fraction in [0, 1]. */
  finalTestAcc?: number | null;
  bestTestAcc?: number | null;
  modelSizeBytes?: number | null;
  packedSizeBytes?: number | null;
  wallTimeS?: number | null;
  samplesPerS?: number | null;
  /** Why the run failed or was cancelled. */
  error?: string | null;
}

/** Ends a PENDING or RUNNING run with its results and a `completed`/`failed`/`cancelled` event. */
export function finishRun(db: StoreDb, id: string, status: FinalStatus, results: RunResults = {}, now: Date = new Date()): RunRow {
  const at = isoTime(now);
  return db.transaction((tx) => {
    const current = tx.select({ status: runs.status }).from(runs).where(eq(runs.id, id)).get();
    if (!current) throw new RunNotFoundError(id);
    if (current.status !== 'PENDING' && current.status !== 'RUNNING') {
      throw new RunStateError(id, current.status, status);
    }
    const updated = tx
      .update(runs)
      .set({ ...results, status, finishedAt: at })
      .where(eq(runs.id, id))
      .returning()
      .get();
    tx.insert(events)
      .values({
        runId: id,
        at,
        kind: status.toLowerCase(),
        detail: results.error ? { error: results.error } : {},
      })
      .run();
    return updated;
  });
}

/**
 * A run by full id or by a unique prefix of it (`r-20250131-12`).
 * Throws RunNotFoundError when nothing matches or the prefix matches several runs.
 */
export function getRun(db: StoreDb, idOrPrefix: string): RunRow {
  if (idOrPrefix === '') throw new RunNotFoundError(idOrPrefix);
  const exact = db.select().from(runs).where(eq(runs.id, idOrPrefix)).get();
  if (exact) return exact;
  // A range on the primary key: every string starting with the prefix sorts in
  // [prefix, prefix + U+10FFFF), and the range can use the index (LIKE could not).
  const matches = db
    .select()
    .from(runs)
    .where(and(gte(runs.id, idOrPrefix), lt(runs.id, `${idOrPrefix}\u{10FFFF}`)))
    .orderBy(runs.id)
    .limit(AMBIGUOUS_LIST_LIMIT)
    .all()
    .filter((r) => r.id.startsWith(idOrPrefix));
  if (matches.length === 1) return matches[0]!;
  throw new RunNotFoundError(
    idOrPrefix,
    matches.map((r) => r.id),
  );
}

export interface ListRunsFilter {
  status?: RunStatus | readonly RunStatus[];
  name?: string;
  dataset?: string;
  model?: string;
  precision?: string;
  seed?: number;
  /** Runs carrying this tag. */
  tag?: string;
  configHash?: string;
  /** Newest first; default 100. */
  limit?: number;
  offset?: number;
}

/** Runs matching every given filter, newest first. */
export function listRuns(db: StoreDb, filter: ListRunsFilter = {}): RunRow[] {
  const where: SQL[] = [];
  if (filter.status !== undefined) {
    const statuses: RunStatus[] = typeof filter.status === 'string' ? [filter.status] : [...filter.status];
    where.push(inArray(runs.status, statuses));
  }
  if (filter.name !== undefined) where.push(eq(runs.name, filter.name));
  if (filter.dataset !== undefined) where.push(eq(runs.dataset, filter.dataset));
  if (filter.model !== undefined) where.push(eq(runs.model, filter.model));
  if (filter.precision !== undefined) where.push(eq(runs.precision, filter.precision));
  if (filter.seed !== undefined) where.push(eq(runs.seed, filter.seed));
  if (filter.configHash !== undefined) where.push(eq(runs.configHash, filter.configHash));
  if (filter.tag !== undefined) {
    where.push(sql`EXISTS (SELECT 1 FROM json_each(${runs.tags}) WHERE json_each.value = ${filter.tag})`);
  }
  return db
    .select()
    .from(runs)
    .where(and(...where))
    .orderBy(desc(runs.createdAt), desc(runs.id))
    .limit(filter.limit ?? 100)
    .offset(filter.offset ?? 0)
    .all();
}

/** How many runs have each status (0 where none has it). */
export function countRunsByStatus(db: StoreDb): Record<RunStatus, number> {
  const rows = db.select({ status: runs.status, n: count() }).from(runs).groupBy(runs.status).all();
  return Object.fromEntries(RUN_STATUSES.map((s) => [s, rows.find((r) => r.status === s)?.n ?? 0])) as Record<RunStatus, number>;
}

/**
 * Records the backend a run really trains with (a cluster learns it from its workers once their
 * engines are up; the row started with the one asked for, e.g. `auto`).
 */
export function setRunBackend(db: StoreDb, id: string, backend: string): void {
  const r = db.update(runs).set({ backend }).where(eq(runs.id, id)).run();
  if (r.changes === 0) throw new RunNotFoundError(id);
}

/** Deletes a run and, by cascade, every row that belongs to it (metrics, checkpoints, events, members, energy). */
export function deleteRun(db: StoreDb, id: string): void {
  db.transaction((tx) => {
    tx.delete(runs).where(eq(runs.id, id)).run();
  });
}
