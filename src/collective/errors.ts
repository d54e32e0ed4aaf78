/**
 * Errors of the collective package. Callers branch with `instanceof`, never on message text.
 *
 * As in Horovod's elastic run loop, a *failed collective* (a step that could not complete:
 * restore the last committed state and redo the step in a new generation) is kept apart
 * from a *membership change* (the group is being re-formed: reset and re-sync, no rollback).
 *
 * A failed collective, an unreachable server and a group that was not re-formed are the
 * network's or the cluster's doing (user errors, shown without a stack); a membership change
 * is control flow and a CollectiveConfigError a caller's bug (test/errors-classified.test.ts).
 */
import { UserError } from '../util/errors.js';

/** A collective operation could not complete; the group instance is unusable afterwards. */
export class CollectiveFailedError extends UserError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'CollectiveFailedError';
  }
}

/** Where a timed-out step stood: who had not delivered what. */
export interface MissingContributions {
  /** Ranks whose reduce-scatter contributions did not reach this rank's owned shard, ascending. */
  missingRanks: number[];
  /** Shards whose reduced (all-gather) result did not reach this rank, ascending. Shard s is owned by rank s. */
  missingShards: number[];
}

/** A step (or the ready barrier) passed its deadline with contributions still missing. */
export class CollectiveTimeoutError extends CollectiveFailedError {
  readonly step: number | 'ready';
  readonly deadlineMs: number;
  readonly missingRanks: number[];
  readonly missingShards: number[];

  constructor(step: number | 'ready', deadlineMs: number, missing: MissingContributions) {
    const parts: string[] = [];
    if (missing.missingRanks.length > 0) parts.push(`no contribution from rank(s) ${missing.missingRanks.join(', ')}`);
    if (missing.missingShards.length > 0)
      parts.push(`no reduced result for shard(s) ${missing.missingShards.join(', ')} (owned by the rank of the same number)`);
    const what = step === 'ready' ? 'ready barrier' : `step ${step}`;
    super(`all-reduce ${what} timed out after ${deadlineMs} ms: ${parts.join('; ') || 'incomplete'}`);
    this.name = 'CollectiveTimeoutError';
    this.step = step;
    this.deadlineMs = deadlineMs;
    this.missingRanks = missing.missingRanks;
    this.missingShards = missing.missingShards;
  }
}

/**
 * A rank's contribution to a step carried NaN or ±Inf. A member never sends one (a rank whose
 * own gradient is not finite sends zeros and says so in the step's metrics, so that every
 * rank fails or skips the step alike), so the sender is faulty: it is named, as a rank that
 * missed the deadline is, and the group re-forms without it.
 */
export class NonFiniteContributionError extends CollectiveFailedError {
  constructor(
    readonly step: number,
    /** The sender. */
    readonly rank: number,
  ) {
    super(`all-reduce step ${step}: rank ${rank} sent NaN or Inf values (a member sends only finite ones)`);
    this.name = 'NonFiniteContributionError';
  }
}

/** The transport under a collective closed or failed while it was in use. */
export class TransportClosedError extends CollectiveFailedError {
  constructor(message = 'transport closed', options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'TransportClosedError';
  }
}

/**
 * The group's membership changed (a worker joined or was evicted; the generation was bumped).
 * Not raised by the all-reduce itself yet: the coordinator client will raise it.
 */
export class MembershipChangedError extends Error {
  readonly generation: number;

  constructor(generation: number, message = `group membership changed (now generation ${generation})`, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MembershipChangedError';
    this.generation = generation;
  }
}

/** An invalid group or option value (a caller's mistake), named with what would be valid. */
export class CollectiveConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CollectiveConfigError';
  }
}

/** The transport could not be reached again within the reconnect window (a server that stayed down). */
export class TransportUnreachableError extends UserError {
  constructor(
    readonly url: string,
    readonly ms: number,
    options: { cause?: unknown } = {},
  ) {
    super(
      `${url} unreachable for ${ms} ms; check that the server runs there and this host can reach it (bnn worker --nats <url>)`,
      options,
    );
    this.name = 'TransportUnreachableError';
  }
}

/** After a failure, no newer generation of the group was assigned in time. */
export class RegroupTimeoutError extends UserError {
  constructor(
    readonly ms: number,
    after: Error,
  ) {
    super(
      `the coordinator did not re-form the group within ${ms} ms after: ${after.message}; check that the coordinator still runs ` +
        '(bnn resume <run> continues from the last checkpoint)',
      { cause: after },
    );
    this.name = 'RegroupTimeoutError';
  }
}
