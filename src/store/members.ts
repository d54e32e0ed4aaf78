import { and, asc, desc, eq, isNull, max } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { missingParentError } from './fk.js';
import { events, runMembers, type RunMemberRow } from './schema.js';
import { isoTime } from './time.js';

export interface JoinInput {
  runId: string;
  generation: number;
  workerId: string;
  rank: number;
  worldSize: number;
  at?: Date;
}

/** Adds a worker to a run's generation, with a `joined` event. */
export function joinRun(db: StoreDb, input: JoinInput): RunMemberRow {
  const at = isoTime(input.at);
  try {
    return db.transaction((tx) => {
      const row = tx
        .insert(runMembers)
        .values({
          runId: input.runId,
          generation: input.generation,
          workerId: input.workerId,
          rank: input.rank,
          worldSize: input.worldSize,
          joinedAt: at,
        })
        .returning()
        .get();
      tx.insert(events)
        .values({
          runId: input.runId,
          at,
          kind: 'joined',
          detail: { workerId: input.workerId, generation: input.generation, rank: input.rank, worldSize: input.worldSize },
        })
        .run();
      return row;
    });
  } catch (err) {
    throw missingParentError(db, err, input.runId, input.workerId);
  }
}

export interface LeaveInput {
  runId: string;
  generation: number;
  workerId: string;
  /** `left` (clean exit), `dead` (declared lost), `generation-ended`, `completed`, ... */
  reason: string;
  /** In words, for the event (e.g. what made a worker leave). */
  why?: string;
  at?: Date;
}

/**
 * Marks a worker as gone from a generation. A `dead` reason is recorded as a `dead` event,
 * anything else as `left`. Returns the updated row, or undefined if it was not a member
 * (or had already left).
 */
export function leaveRun(db: StoreDb, input: LeaveInput): RunMemberRow | undefined {
  const at = isoTime(input.at);
  return db.transaction((tx) => {
    const row = tx
      .update(runMembers)
      .set({ leftAt: at, reason: input.reason })
      .where(
        and(
          eq(runMembers.runId, input.runId),
          eq(runMembers.generation, input.generation),
          eq(runMembers.workerId, input.workerId),
          isNull(runMembers.leftAt),
        ),
      )
      .returning()
      .get();
    if (row) {
      tx.insert(events)
        .values({
          runId: input.runId,
          at,
          kind: input.reason === 'dead' ? 'dead' : 'left',
          detail: {
            workerId: input.workerId,
            generation: input.generation,
            reason: input.reason,
            ...(input.why !== undefined ? { why: input.why } : {}),
          },
        })
        .run();
    }
    return row;
  });
}

/** Closes every open membership of a generation (the group re-forms as the next one). Returns how many. */
export function endGeneration(db: StoreDb, runId: string, generation: number, reason = 'generation-ended', at: Date = new Date()): number {
  return db
    .update(runMembers)
    .set({ leftAt: isoTime(at), reason })
    .where(and(eq(runMembers.runId, runId), eq(runMembers.generation, generation), isNull(runMembers.leftAt)))
    .run().changes;
}

/** A run's memberships by generation then rank; one generation's when given. */
export function listMembers(db: StoreDb, runId: string, generation?: number): RunMemberRow[] {
  const where = [eq(runMembers.runId, runId)];
  if (generation !== undefined) where.push(eq(runMembers.generation, generation));
  return db
    .select()
    .from(runMembers)
    .where(and(...where))
    .orderBy(asc(runMembers.generation), asc(runMembers.rank))
    .all();
}

/** The newest generation's members still present, by rank (empty before anyone joined). */
export function currentMembers(db: StoreDb, runId: string): RunMemberRow[] {
  const latest = db
    .select({ generation: max(runMembers.generation) })
    .from(runMembers)
    .where(eq(runMembers.runId, runId))
    .get()?.generation;
  if (latest === null || latest === undefined) return [];
  return listMembers(db, runId, latest).filter((m) => m.leftAt === null);
}

/** The last generation of a run (0 before its first) and that generation's world size (0 then). */
export function lastGeneration(db: StoreDb, runId: string): { generation: number; worldSize: number } {
  const members = listMembers(db, runId);
  const generation = members.reduce((g, m) => Math.max(g, m.generation), 0);
  return { generation, worldSize: members.find((m) => m.generation === generation)?.worldSize ?? 0 };
}

/**
 * How many workers a resumed run trains with unless told: the world size of its last
 * generation, else the worker count it was submitted with, else 1 (a `bnn train` run).
 * The one rule, used by `bnn resume` (how many local workers to start) and ResumeRun.
 */
export function resumeWorldSize(db: StoreDb, runId: string): number {
  const { worldSize } = lastGeneration(db, runId);
  if (worldSize > 0) return worldSize;
  const submitted = db
    .select({ detail: events.detail })
    .from(events)
    .where(and(eq(events.runId, runId), eq(events.kind, 'submitted')))
    .orderBy(desc(events.id))
    .limit(1)
    .get();
  const workers = (submitted?.detail as { workers?: unknown } | null | undefined)?.workers;
  return typeof workers === 'number' && Number.isInteger(workers) && workers > 0 ? workers : 1;
}
