/**
 * A run's WatchCluster events as progress lines, shared by `bnn launch` (--local and
 * --coordinator) and `bnn resume`.
 */

/** One epoch line as the coordinator publishes it (WatchCluster kind `epoch`). */
export interface EpochEvent {
  epoch: number;
  epochs: number;
  trainLoss: number;
  trainAcc: number;
  testLoss: number | null;
  testAcc: number | null;
  samplesPerS: number;
  workersAlive: number;
  worldSize: number;
}

/** One WatchCluster event (the fields these lines need). */
export interface WatchEvent {
  run_id: string;
  kind: string;
  detail_json: string;
}

export const TERMINAL = ['COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type Terminal = (typeof TERMINAL)[number];
/** The exit code of `bnn launch` / `bnn resume` for a run that ended so. */
export const EXIT: Record<Terminal, number> = { COMPLETED: 0, FAILED: 1, CANCELLED: 130 };
export const isTerminal = (s: unknown): s is Terminal => typeof s === 'string' && (TERMINAL as readonly string[]).includes(s);
export const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The line `bnn launch` and `bnn resume` print per epoch. */
export function formatEpochLine(e: EpochEvent): string {
  return (
    `epoch ${e.epoch}/${e.epochs}  train loss ${e.trainLoss.toFixed(4)} acc ${pct(e.trainAcc)}` +
    (e.testAcc !== null ? `  test acc ${pct(e.testAcc)}` : '') +
    `  ${Math.round(e.samplesPerS).toLocaleString('en-US')} samples/s  ${e.workersAlive}/${e.worldSize} workers alive`
  );
}

/** A generation change as a progress line: `generation 2: 2 worker(s) (why)`. */
export function generationLine(d: Record<string, unknown>): string {
  return `generation ${String(d.generation)}: ${String(d.worldSize)} worker(s) (${String(d.reason)})`;
}

/**
 * Handles one WatchCluster event: for `runId`, an epoch is collected in `epochs` and said, a
 * generation change is said, and the run's end is returned (null for anything else).
 */
export function onRunEvent(
  ev: WatchEvent,
  runId: string,
  epochs: EpochEvent[],
  say: (line: string) => void,
): { status: Terminal; error: string } | null {
  if (ev.run_id !== runId) return null;
  const d = JSON.parse(ev.detail_json) as Record<string, unknown>;
  if (ev.kind === 'epoch') {
    const e = d as unknown as EpochEvent;
    epochs.push(e);
    say(formatEpochLine(e));
  } else if (ev.kind === 'generation') {
    say(generationLine(d));
  } else if (ev.kind === 'run' && isTerminal(d.status)) {
    return { status: d.status, error: typeof d.error === 'string' ? d.error : '' };
  } else if (ev.kind === 'run' && d.status === 'PENDING' && typeof d.waiting === 'string') {
    say(queuedLine(d.waiting, typeof d.position === 'number' ? d.position : 0));
  } else if (ev.kind === 'run' && d.status === 'RUNNING') {
    say(`started: generation ${String(d.generation)}, ${Array.isArray(d.workers) ? d.workers.length : '?'} worker(s)`);
  }
  return null;
}

/** A queued run's line: `queued (position 2): waiting for 4 workers, 2 idle`. */
export function queuedLine(waiting: string, position: number): string {
  return `queued${position > 0 ? ` (position ${position})` : ''}: ${waiting}`;
}
