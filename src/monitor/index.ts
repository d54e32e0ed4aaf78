export { MonitorError } from './errors.js';
export {
  applyEvent,
  emptyMonitorState,
  heartbeatAge,
  snapshotJson,
  type HostTelemetry,
  type MonitorRun,
  type MonitorState,
  type MonitorWorker,
} from './model.js';
export { gpuUtil, power, renderMonitor, temperature } from './render.js';
export { defaultMonitorOptions, runMonitor, type MonitorOptions, type MonitorTerminal } from './session.js';
