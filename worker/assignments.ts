// A worker's view of its Assignments stream: the first ASSIGN picks its run; later ASSIGNs of
// that run (a higher generation) are offered to its elastic group, a STOP or the stream's end
// interrupts it. One run per worker process.
import type { Assignment, CoordinatorClient } from '../src/rpc/index.js';
import { CoordinatorLostError, RunStoppedError } from './errors.js';

/** What a worker that lost its coordinator says to do. */
const RECONNECT_HINT = 'check that it still runs at --coordinator, then start this worker again';

export class AssignmentFeed {
  /** Resolves with the first assignment; rejects when the coordinator is lost first. */
  readonly first: Promise<Assignment>;
  /** Rejects with RunStoppedError (a STOP) or CoordinatorLostError; never resolves. */
  readonly interrupted: Promise<never>;
  private stopReason: string | null = null;
  private lost: Error | null = null;
  private runId = '';
  private onOffer: ((a: Assignment) => void) | null = null;
  private readonly later: Assignment[] = [];
  private assigned!: (a: Assignment) => void;
  private lostSignal!: (e: Error) => void;
  private stopSignal!: (e: Error) => void;
  private readonly stream: ReturnType<CoordinatorClient['assignments']>;

  constructor(client: CoordinatorClient, workerId: string) {
    this.first = new Promise<Assignment>((resolve) => (this.assigned = resolve));
    const lostPromise = new Promise<never>((_, reject) => (this.lostSignal = reject));
    // A STOP also abandons an all-reduce in flight: the peers that stopped will never contribute.
    const stopPromise = new Promise<never>((_, reject) => (this.stopSignal = reject));
    this.interrupted = Promise.race([lostPromise, stopPromise]);
    for (const p of [lostPromise, stopPromise, this.interrupted]) p.catch(() => undefined);
    this.first = Promise.race([this.first, lostPromise]);
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
    if (a.kind === 'ASSIGN' && this.runId === '') {
      this.runId = a.run_id;
      this.assigned(a);
    } else if (a.kind === 'ASSIGN' && a.run_id === this.runId) {
      if (this.onOffer) this.onOffer(a);
      else this.later.push(a);
    } else if (a.kind === 'STOP' && a.run_id === this.runId) {
      this.stopReason = a.reason || 'stopped';
      this.stopSignal(new RunStoppedError(this.runId, this.stopReason));
    }
  }

  /** The launcher went away (its lifeline closed), or the stream ended. */
  loseCoordinator(err: Error, stopReason?: string): void {
    if (stopReason) this.stopReason ??= stopReason;
    this.lost ??= err;
    this.lostSignal(this.lost);
  }

  /** Later assignments of the run go to `offer` (those that arrived already, at once). */
  forwardTo(offer: (a: Assignment) => void): void {
    this.onOffer = offer;
    for (const a of this.later.splice(0)) offer(a);
  }

  /** Throws RunStoppedError or CoordinatorLostError when the run must end here; called between steps. */
  checkStop(): void {
    if (this.stopReason !== null) throw new RunStoppedError(this.runId, this.stopReason);
    if (this.lost) throw this.lost;
  }

  cancel(): void {
    this.stream.cancel();
  }
}
