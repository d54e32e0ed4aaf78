export {
  compareQueryFlags,
  compareQueryOf,
  compareRuns,
  parseCompareQuery,
  ACCURACY_METRICS,
  GROUP_FIELDS,
  METRIC_NAMES,
  METRICS,
  type CompareFlags,
  type CompareGroup,
  type CompareQuery,
  type CompareResult,
  type GroupField,
  type MetricName,
} from './compare.js';
export { QueryFlagError, SqlError, SqlRefusedError } from './errors.js';
export { DEFAULT_STORE_PATH, openQueryStore, withQueryStore, type QueryStoreOptions } from './open.js';
export {
  defaultRunsQuery,
  parseRunsQuery,
  queryRuns,
  queryShownRuns,
  runFilterFlags,
  runFilterOf,
  runsQueryFlags,
  runsQueryOf,
  SORT_KEYS,
  type RunFilter,
  type RunFilterFlags,
  type RunsQuery,
  type RunsQueryFlags,
  type SortKey,
} from './runs.js';
export { abandonedNote, abandonedRunIds, runLiveness, shownRun, type ShownRun } from './liveness.js';
export { runDetail, type RunDetail } from './show.js';
export { leadingKeyword, runSql, type SqlResult, type SqlValue } from './sql.js';
export { mean, sampleStd, welchTTest, type WelchResult } from './stats.js';
