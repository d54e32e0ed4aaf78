export { runWorker, type RunWorkerOptions } from './main.js';
export { trainRank, type RankAssignment, type RankDeps, type RankResult } from './train.js';
export { flatLayout, type FlatLayout } from './flat.js';
export { CoordinatorLostError, RunStoppedError, WorkerError } from './errors.js';
