import { Option, type Command } from 'commander';

/**
 * Every environment variable a `bnn` option falls back to, by what it sets. An explicit flag wins
 * over the variable, which wins over the option's default; a variable's value is checked like the
 * flag's, and a bad one is named as the variable (FlagError, exit 2). docs/environment.md lists
 * them in one table, and test/cli-environment.test.ts checks that table against the options.
 */
export const ENV = {
  logFormat: 'BNN_LOG_FORMAT',
  clusterToken: 'BNN_CLUSTER_TOKEN',
  coordinator: 'BNN_COORDINATOR',
  coordinatorHost: 'BNN_COORDINATOR_HOST',
  coordinatorPort: 'BNN_COORDINATOR_PORT',
  httpHost: 'BNN_HTTP_HOST',
  httpPort: 'BNN_HTTP_PORT',
  store: 'BNN_STORE',
  checkpointStore: 'BNN_CHECKPOINT_STORE',
  checkpointReplicas: 'BNN_CHECKPOINT_REPLICAS',
  natsUrl: 'BNN_NATS_URL',
  natsUser: 'BNN_NATS_USER',
  natsPass: 'BNN_NATS_PASS',
  natsToken: 'BNN_NATS_TOKEN',
  natsTlsCa: 'BNN_NATS_TLS_CA',
  natsTlsCert: 'BNN_NATS_TLS_CERT',
  natsTlsKey: 'BNN_NATS_TLS_KEY',
  tlsCert: 'BNN_TLS_CERT',
  tlsKey: 'BNN_TLS_KEY',
  tlsCa: 'BNN_TLS_CA',
  tlsServerName: 'BNN_TLS_SERVER_NAME',
  workerThreads: 'BNN_WORKER_THREADS',
  workerBackend: 'BNN_WORKER_BACKEND',
  workerGpu: 'BNN_WORKER_GPU',
  workerDumpWeights: 'BNN_WORKER_DUMP_WEIGHTS',
} as const;

export type EnvVarName = (typeof ENV)[keyof typeof ENV];

/** Every name of ENV. */
export const ENV_VARS: readonly EnvVarName[] = Object.values(ENV);

/**
 * An option that falls back to `envVar` (commander shows `(env: NAME)` in its help); add it with
 * `cmd.addOption(...)`. Commander wires the fallback when the option is added, so it is set here.
 */
export function envOption(flags: string, description: string, envVar: EnvVarName, defaultValue?: string): Option {
  const option = new Option(flags, description).env(envVar);
  return defaultValue === undefined ? option : option.default(defaultValue);
}

/** Whether the option `key` of `command` took its value from its environment variable. */
export function fromEnv(command: Command, key: string): boolean {
  return command.getOptionValueSource(key) === 'env';
}

/**
 * The options of `command` as given on its command line (values from the environment left out),
 * for choices that depend on what the user typed: `bnn launch --local 2` with BNN_COORDINATOR set
 * starts a local cluster; a flag refused in one mode is refused only when typed.
 */
export function typedOptions<T extends object>(command: Command, opts: T): Partial<T> {
  return Object.fromEntries(Object.entries(opts).filter(([k]) => !fromEnv(command, k))) as Partial<T>;
}

/** The environment variable of the option `key` of `command` when its value came from there. */
export function envSourceOf(command: Command, key: string): string | undefined {
  if (!fromEnv(command, key)) return undefined;
  return command.options.find((o) => o.attributeName() === key)?.envVar;
}
