export { createCoordinatorServer, toRpcError, type CoordinatorServer, type CoordinatorServerDeps } from './server.js';
export { Coordinator, type CoordinatorDeps, type WorkerState } from './coordinator.js';
export { defaultCoordinatorOptions, parseCoordinatorOptions, type CoordinatorOptions } from './options.js';
export { CoordinatorError, InvalidRequestError, NotAMemberError, NotResumableError, UnknownWorkerError } from './errors.js';
export { chooseCheckpoint, type CheckpointChoice, type RefusedCheckpoint } from './checkpoints.js';
export { runCoordinator, type RunCoordinatorOptions } from './main.js';
