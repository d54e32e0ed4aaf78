import { and, asc, desc, eq, inArray } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { isForeignKeyViolation, RunNotFoundError } from './errors.js';
import { events, type EventRow } from './schema.js';
import { isoTime } from './time.js';

export interface EventInput {
  /** Omit for events that belong to no run. */
  runId?: string | null;
  /** Short lowercase word: created, started, resumed, failed, joined, left, ... */
  kind: string;
  detail?: Record<string, unknown>;
  at?: Date;
}

export function addEvent(db: StoreDb, input: EventInput): EventRow {
  try {
    return db.transaction((tx) =>
      tx
        .insert(events)
        .values({ runId: input.runId ?? null, kind: input.kind, detail: input.detail ?? {}, at: isoTime(input.at) })
        .returning()
        .get(),
    );
  } catch (err) {
    if (isForeignKeyViolation(err) && input.runId) throw new RunNotFoundError(input.runId);
    throw err;
  }
}

/** A run's events in the order they happened. */
export function listEvents(db: StoreDb, runId: string): EventRow[] {
  return db.select().from(events).where(eq(events.runId, runId)).orderBy(asc(events.at), asc(events.id)).all();
}

/** The newest event of `kind` of each of `runIds` that has one (e.g. why each PENDING run waits). */
export function latestEventOfKind(db: StoreDb, runIds: readonly string[], kind: string): Map<string, EventRow> {
  const out = new Map<string, EventRow>();
  if (runIds.length === 0) return out;
  const rows = db
    .select()
    .from(events)
    .where(and(eq(events.kind, kind), inArray(events.runId, [...runIds])))
    .orderBy(desc(events.id))
    .all();
  for (const r of rows) if (r.runId !== null && !out.has(r.runId)) out.set(r.runId, r);
  return out;
}
