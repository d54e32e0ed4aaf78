export {
  checkSchemaCurrent,
  currentSchemaVersion,
  DEFAULT_LOCK_TIMEOUT_MS,
  defaultOpenStoreOptions,
  migrationsFolder,
  openStore,
  storeIsOpen,
  type OpenStoreOptions,
  type Store,
  type StoreDb,
  withStoreErrors,
} from './db.js';
export {
  isBusy,
  RunNotFoundError,
  RunStateError,
  StoreBusyError,
  StoreCorruptError,
  StoreError,
  storeErrorFrom,
  StoreFullError,
  StoreReadOnlyError,
  StoreSchemaBehindError,
  StoreSchemaTooNewError,
  WorkerNotFoundError,
} from './errors.js';
export { defaultWriteQueueOptions, StoreWriteQueue, type WriteQueueOptions } from './write-queue.js';
export {
  activeRunOwners,
  claimRun,
  countRunsByStatus,
  createRun,
  deleteRun,
  finishRun,
  getRun,
  listRuns,
  markRunning,
  newRunId,
  runOwner,
  setRunBackend,
  type CreateRunInput,
  type FinalStatus,
  type ListRunsFilter,
  type RunResults,
  type StartRunInput,
} from './runs.js';
export {
  addEpochMetrics,
  EpochTally,
  listEpochMetrics,
  runsWithTestAccuracy,
  testAccuracyCurves,
  type EpochMetricsInput,
} from './metrics.js';
export {
  listCompletedRuns,
  queryRuns,
  RUN_SORT_KEYS,
  runsStatement,
  SHOWN_STATUSES,
  type ShownStatus,
  type RunFilter,
  type RunSortKey,
  type RunsQuery,
} from './run-queries.js';
export {
  compareRows,
  compareStatement,
  energyRowsStatement,
  joulesPerSampleFromRows,
  type CompareRow,
} from './compare.js';
export {
  addCheckpoint,
  allCheckpointPaths,
  checkpointsPastRetention,
  latestCheckpoint,
  listCheckpoints,
  removeCheckpointRows,
  removeCheckpoints,
  type CheckpointInput,
  type PrunedCheckpoints,
} from './checkpoints.js';
export { addEvent, latestEventOfKind, listEvents, type EventInput } from './events.js';
export { getWorker, listWorkers, touchWorker, upsertWorker, type WorkerInput } from './workers.js';
export {
  latestHardware,
  listHardware,
  recordHardware,
  type HardwareColumns,
  type HardwareFilter,
  type RecordHardwareInput,
} from './hardware.js';
export {
  currentMembers,
  endGeneration,
  joinRun,
  lastGeneration,
  leaveRun,
  listMembers,
  resumeWorldSize,
  type JoinInput,
  type LeaveInput,
} from './members.js';
export { addStepMetrics, listStepMetrics, type StepMetricsInput, type StepRange } from './steps.js';
export {
  addEnergySample,
  addEnergySamples,
  energyByRun,
  energyPerEpoch,
  energyPerSample,
  listEnergySamples,
  type EnergySampleInput,
  type EnergyTotal,
  type EpochEnergy,
  type RunEnergy,
  type SampleEnergy,
} from './energy.js';
export { isoTime } from './time.js';
export { BACKFILL_RUN_TOTALS_SQL, refreshEnergyTotals, refreshRunTotals, refreshTrainedSamples } from './totals.js';
export * from './schema.js';
