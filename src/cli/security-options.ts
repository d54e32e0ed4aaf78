// Flags for the cluster's transport security, shared by `bnn coordinator`, `bnn worker` and
// `bnn launch --coordinator`: gRPC TLS / mutual TLS, and NATS credentials / TLS. Secrets may
// come from the environment instead of flags (a command line is visible to `ps`).
import type { Command } from 'commander';
import { checkNatsTlsFiles, natsAuthFromFlags, type NatsAuth } from '../collective/nats-url.js';
import { clientTlsFiles, loadClientTls, loadServerTls, serverTlsFiles, type ClientTls, type ServerTls } from '../rpc/tls.js';

export interface ServerTlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}
export interface ClientTlsFlags {
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}
export interface NatsAuthFlags {
  natsUser?: string;
  natsPass?: string;
  natsToken?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
}

/** `--tls-cert/--tls-key/--tls-ca` of the coordinator's gRPC port. */
export function addServerTlsOptions(cmd: Command): Command {
  return cmd
    .option('--tls-cert <file>', 'serve gRPC over TLS with this PEM certificate chain (needs --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--tls-ca <file>', 'mutual TLS: require client certificates signed by this PEM CA');
}

/** `--tls`, `--tls-ca/--tls-cert/--tls-key`, `--tls-server-name` of a client of the coordinator. */
export function addClientTlsOptions(cmd: Command): Command {
  return cmd
    .option('--tls', 'connect to the coordinator over TLS, trusting the system CAs (implied by --tls-ca/--tls-cert)')
    .option('--tls-ca <file>', "PEM CA that signed the coordinator's certificate (turns TLS on)")
    .option('--tls-cert <file>', 'client certificate for mutual TLS (PEM; needs --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--tls-server-name <name>', "verify the coordinator's certificate against this name instead of the address's host");
}

/** NATS credentials (defaults from BNN_NATS_USER / BNN_NATS_PASS / BNN_NATS_TOKEN) and TLS files. */
export function addNatsAuthOptions(cmd: Command, who: 'worker' | 'coordinator'): Command {
  cmd
    .option('--nats-user <name>', 'NATS user (default: BNN_NATS_USER); or put user:pass@ in the --nats url')
    .option('--nats-pass <secret>', 'NATS password (default: BNN_NATS_PASS)')
    .option('--nats-token <secret>', 'NATS token (default: BNN_NATS_TOKEN); or put token@ in the --nats url');
  if (who === 'worker') {
    cmd
      .option('--nats-tls-ca <file>', 'PEM CA that signed the NATS server certificate (turns NATS TLS on)')
      .option('--nats-tls-cert <file>', 'client certificate for NATS (PEM; needs --nats-tls-key)')
      .option('--nats-tls-key <file>', 'PEM private key of --nats-tls-cert');
  }
  return cmd;
}

/** Server TLS from flags, files read and checked; null: plaintext. */
export function serverTlsFromFlags(flags: ServerTlsFlags): ServerTls | null {
  const files = serverTlsFiles(flags);
  return files ? loadServerTls(files) : null;
}

/** Client TLS from flags, files read and checked; null: plaintext. */
export function clientTlsFromFlags(flags: ClientTlsFlags): ClientTls | null {
  const files = clientTlsFiles(flags);
  return files ? loadClientTls(files) : null;
}

/** NATS credentials from flags, then the environment; TLS files checked readable. */
export function natsAuthFromOptions(flags: NatsAuthFlags, env: NodeJS.ProcessEnv = process.env): NatsAuth {
  const fromEnv = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  const explicitUser = flags.natsUser !== undefined || flags.natsPass !== undefined;
  const explicitToken = flags.natsToken !== undefined;
  // A flag of one kind hides the environment's other kind, so `--nats-token` works with BNN_NATS_USER set.
  const auth = natsAuthFromFlags({
    natsUser: flags.natsUser ?? (explicitToken ? undefined : fromEnv(env.BNN_NATS_USER)),
    natsPass: flags.natsPass ?? (explicitToken ? undefined : fromEnv(env.BNN_NATS_PASS)),
    natsToken: flags.natsToken ?? (explicitUser ? undefined : fromEnv(env.BNN_NATS_TOKEN)),
    natsTlsCa: flags.natsTlsCa,
    natsTlsCert: flags.natsTlsCert,
    natsTlsKey: flags.natsTlsKey,
  });
  checkNatsTlsFiles(auth);
  return auth;
}
