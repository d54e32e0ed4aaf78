export { runThreads, runWorker, type RunWorkerOptions } from './main.js';
export { CoordinatorLostError, RunStoppedError, WorkerError } from './errors.js';
