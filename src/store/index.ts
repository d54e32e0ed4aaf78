export { defaultOpenStoreOptions, migrationsFolder, openStore, type OpenStoreOptions, type Store, type StoreDb } from './db.js';
export { RunNotFoundError, RunStateError, StoreError } from './errors.js';
export {
  createRun,
  finishRun,
  getRun,
  listRuns,
  markRunning,
  newRunId,
  type CreateRunInput,
  type FinalStatus,
  type ListRunsFilter,
  type RunResults,
  type StartRunInput,
} from './runs.js';
export { addEpochMetrics, listEpochMetrics, type EpochMetricsInput } from './metrics.js';
export { addCheckpoint, latestCheckpoint, listCheckpoints, type CheckpointInput } from './checkpoints.js';
export { addEvent, listEvents, type EventInput } from './events.js';
export { isoTime } from './time.js';
export * from './schema.js';
