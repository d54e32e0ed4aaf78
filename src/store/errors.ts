import { UserError } from '../util/errors.js';

/** The experiment database file cannot be opened, migrated or written. */
export class StoreError extends UserError {
  /** The database file concerned. */
  readonly file: string;

  constructor(file: string, message: string, options: { cause?: unknown } = {}) {
    super(`${file}: ${message}`, options);
    this.name = 'StoreError';
    this.file = file;
  }

  override details(): Record<string, unknown> {
    return { file: this.file };
  }
}

/** The file was written by a newer bnn-cluster, whose schema this build does not know. */
export class StoreSchemaTooNewError extends StoreError {
  constructor(
    file: string,
    /** The file's schema version. */
    readonly fileVersion: number,
    /** The newest schema version this build knows. */
    readonly knownVersion: number,
  ) {
    super(file, `was written by a newer bnn-cluster (schema ${fileVersion}, this build knows ${knownVersion}); upgrade bnn-cluster`);
    this.name = 'StoreSchemaTooNewError';
  }

  override details(): Record<string, unknown> {
    return { file: this.file, fileVersion: this.fileVersion, knownVersion: this.knownVersion };
  }
}

/**
 * The file's schema is older than this build's and the open was read-only without upgrade,
 * so nothing was changed. `hint` says how to upgrade it (the default: open it read-write once).
 */
export class StoreSchemaBehindError extends StoreError {
  constructor(
    file: string,
    /** The file's schema version. */
    readonly fileVersion: number,
    /** The schema version this build writes. */
    readonly knownVersion: number,
    /** Migrations not yet applied to it. */
    readonly pending: number,
    hint = 'open it once without read-only mode to upgrade',
  ) {
    super(file, `its schema is ${pending} migration(s) behind (schema ${fileVersion}, this build writes ${knownVersion}); ${hint}`);
    this.name = 'StoreSchemaBehindError';
  }

  override details(): Record<string, unknown> {
    return { file: this.file, fileVersion: this.fileVersion, knownVersion: this.knownVersion, pending: this.pending };
  }
}

/** The message for an SQLite file that holds no bnn-cluster schema at all (schema 0). */
export function notAStoreMessage(): string {
  return 'not a bnn-cluster experiment database: it has none of its tables (pass the file bnn train or bnn launch records runs in)';
}

/** No run has this id, or the id prefix is ambiguous (`candidates` lists the matches). */
export class RunNotFoundError extends UserError {
  readonly runId: string;
  readonly candidates: readonly string[];

  constructor(runId: string, candidates: readonly string[] = []) {
    super(
      candidates.length === 0
        ? `no run with id or id prefix "${runId}"`
        : `run id prefix "${runId}" is ambiguous: it matches ${candidates.join(', ')}${
            candidates.length >= AMBIGUOUS_LIST_LIMIT ? ', ...' : ''
          }`,
    );
    this.name = 'RunNotFoundError';
    this.runId = runId;
    this.candidates = candidates;
  }

  override details(): Record<string, unknown> {
    return { runId: this.runId, candidates: this.candidates };
  }
}

/** No worker has this id (it never registered with this database). */
export class WorkerNotFoundError extends UserError {
  constructor(readonly workerId: string) {
    super(`no worker with id "${workerId}"`);
    this.name = 'WorkerNotFoundError';
  }

  override details(): Record<string, unknown> {
    return { workerId: this.workerId };
  }
}

/** How many matches an ambiguous-prefix error lists. */
export const AMBIGUOUS_LIST_LIMIT = 10;

/** A run was asked to move to a status its current status does not allow. */
export class RunStateError extends UserError {
  constructor(
    readonly runId: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`run ${runId} is ${from}; it cannot become ${to}`);
    this.name = 'RunStateError';
  }

  override details(): Record<string, unknown> {
    return { runId: this.runId, from: this.from, to: this.to };
  }
}

/** True for SQLite's foreign-key violation (a row naming a run that does not exist). */
export function isForeignKeyViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
