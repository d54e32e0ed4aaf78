// A worker's view of its Assignments stream, for the worker's whole life: each run's first
// ASSIGN opens a RunFeed (taken in order by `nextRun`); later ASSIGNs of that run (a higher
// generation) are offered to its elastic group; a STOP of the run, the stream's end or the
// worker's own shutdown interrupts it. A long-lived worker serves one run after another.
import type { Assignment, CoordinatorClient } from '../src/rpc/index.js';
import { CoordinatorLostError, RunStoppedError, WorkerShutdownError } from './errors.js';

/** What a worker that lost its coordinator says to do. */
const RECONNECT_HINT = 'check that it still runs at --coordinator, then start this worker again';

/** One run as this worker sees it: its first assignment, later ones, and what interrupts it. */
export class RunFeed {
  /** Rejects with RunStoppedError (a STOP), CoordinatorLostError or WorkerShutdownError; never resolves. */
  readonly interrupted: Promise<never>;
  private stopReason: string | null = null;
  private failure: Error | null = null;
  private onOffer: ((a: Assignment) => void) | null = null;
  private readonly later: Assignment[] = [];
  private signal!: (e: Error) => void;

  constructor(readonly first: Assignment) {
    this.interrupted = new Promise<never>((_, reject) => (this.signal = reject));
    this.interrupted.catch(() => undefined);
  }

  get runId(): string {
    return this.first.run_id;
  }

  /** A later assignment of this run (a re-formed group). */
  offer(a: Assignment): void {
    if (this.onOffer) this.onOffer(a);
    else this.later.push(a);
  }

  /** The coordinator stopped the run (cancelled, failed elsewhere, or over). A STOP also abandons an all-reduce in flight. */
  stop(reason: string): void {
    if (this.stopReason !== null || this.failure) return;
    this.stopReason = reason || 'stopped';
    this.signal(new RunStoppedError(this.runId, this.stopReason));
  }

  /** The coordinator went away, or this worker is shutting down. */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.signal(err);
  }

  /** Later assignments of the run go to `offer` (those that arrived already, at once). */
  forwardTo(offer: (a: Assignment) => void): void {
    this.onOffer = offer;
    for (const a of this.later.splice(0)) offer(a);
  }

  /** Throws RunStoppedError, CoordinatorLostError or WorkerShutdownError when the run must end here; called between steps. */
  checkStop(): void {
    if (this.failure) throw this.failure;
    if (this.stopReason !== null) throw new RunStoppedError(this.runId, this.stopReason);
  }
}

export class AssignmentStream {
  private lost: Error | null = null;
  /** Runs assigned and not yet taken by `nextRun`, oldest first. */
  private readonly waiting: RunFeed[] = [];
  /** The runs assigned and not yet over here, by id (a STOP of a finished one is ignored). */
  private readonly feeds = new Map<string, RunFeed>();
  private current: RunFeed | null = null;
  private wake: (() => void) | null = null;
  private readonly stream: ReturnType<CoordinatorClient['assignments']>;

  constructor(client: CoordinatorClient, workerId: string) {
    this.stream = client.assignments({ worker_id: workerId });
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for await (const a of this.stream) this.onAssignment(a);
      this.loseCoordinator(new CoordinatorLostError(`the coordinator ended the assignment stream; ${RECONNECT_HINT}`));
    } catch (err) {
      this.loseCoordinator(new CoordinatorLostError(`lost the coordinator: ${(err as Error).message}; ${RECONNECT_HINT}`, { cause: err }));
    }
  }

  private onAssignment(a: Assignment): void {
    const known = this.feeds.get(a.run_id);
    if (a.kind === 'ASSIGN' && !known) {
      const feed = new RunFeed(a);
      this.feeds.set(a.run_id, feed);
      this.waiting.push(feed);
      this.wake?.();
    } else if (a.kind === 'ASSIGN' && known) {
      known.offer(a);
    } else if (a.kind === 'STOP' && known) {
      known.stop(a.reason);
    }
  }

  /**
   * The next run assigned to this worker (at once when one arrived while the previous run ended).
   * Rejects with CoordinatorLostError or WorkerShutdownError.
   */
  async nextRun(): Promise<RunFeed> {
    // the run served before is over here: an ASSIGN of its id from now on is a resume of it (a new feed)
    if (this.current && this.feeds.get(this.current.runId) === this.current) this.feeds.delete(this.current.runId);
    this.current = null;
    for (;;) {
      if (this.lost) throw this.lost;
      const feed = this.waiting.shift();
      if (feed) {
        this.current = feed;
        return feed;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  /** The stream ended, the launcher went away (its lifeline closed), or the worker shuts down: every run is interrupted. */
  loseCoordinator(err: Error): void {
    this.lost ??= err;
    this.current?.fail(this.lost);
    for (const f of this.waiting) f.fail(this.lost);
    this.wake?.();
  }

  /** SIGTERM/SIGINT: an idle worker leaves at once; a run in progress stops at its next step boundary. */
  shutdown(signal: string): void {
    this.loseCoordinator(new WorkerShutdownError(signal));
  }

  cancel(): void {
    this.stream.cancel();
  }
}
