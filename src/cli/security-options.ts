// Flags for the cluster's transport security, shared by `bnn coordinator`, `bnn worker` and
// `bnn launch --coordinator`: gRPC TLS / mutual TLS, and NATS credentials / TLS. Each may come
// from the environment instead (src/config/environment.ts; a command line is visible to `ps`).
import type { Command } from 'commander';
import { ENV, envOption } from '../config/environment.js';
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
    .addOption(envOption('--tls-cert <file>', 'serve gRPC over TLS with this PEM certificate chain (needs --tls-key)', ENV.tlsCert))
    .addOption(envOption('--tls-key <file>', 'PEM private key of --tls-cert', ENV.tlsKey))
    .addOption(envOption('--tls-ca <file>', 'mutual TLS: require client certificates signed by this PEM CA', ENV.tlsCa));
}

/** `--tls`, `--tls-ca/--tls-cert/--tls-key`, `--tls-server-name` of a client of the coordinator. */
export function addClientTlsOptions(cmd: Command): Command {
  return cmd
    .option('--tls', 'connect to the coordinator over TLS, trusting the system CAs (implied by --tls-ca/--tls-cert)')
    .addOption(envOption('--tls-ca <file>', "PEM CA that signed the coordinator's certificate (turns TLS on)", ENV.tlsCa))
    .addOption(envOption('--tls-cert <file>', 'client certificate for mutual TLS (PEM; needs --tls-key)', ENV.tlsCert))
    .addOption(envOption('--tls-key <file>', 'PEM private key of --tls-cert', ENV.tlsKey))
    .addOption(
      envOption(
        '--tls-server-name <name>',
        "verify the coordinator's certificate against this name instead of the address's host",
        ENV.tlsServerName,
      ),
    );
}

/** NATS credentials and TLS files. */
export function addNatsAuthOptions(cmd: Command, who: 'worker' | 'coordinator'): Command {
  cmd
    .addOption(envOption('--nats-user <name>', 'NATS user; or put user:pass@ in the --nats url', ENV.natsUser))
    .addOption(envOption('--nats-pass <secret>', 'NATS password', ENV.natsPass))
    .addOption(envOption('--nats-token <secret>', 'NATS token; or put token@ in the --nats url', ENV.natsToken));
  if (who === 'worker') {
    cmd
      .addOption(envOption('--nats-tls-ca <file>', 'PEM CA that signed the NATS server certificate (turns NATS TLS on)', ENV.natsTlsCa))
      .addOption(envOption('--nats-tls-cert <file>', 'client certificate for NATS (PEM; needs --nats-tls-key)', ENV.natsTlsCert))
      .addOption(envOption('--nats-tls-key <file>', 'PEM private key of --nats-tls-cert', ENV.natsTlsKey));
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

/**
 * NATS credentials from the options, `fromEnv(key)` telling which came from the environment
 * (BNN_NATS_*; an empty one counts as unset); TLS files checked readable.
 */
export function natsAuthFromOptions(flags: NatsAuthFlags, fromEnv: (key: keyof NatsAuthFlags) => boolean = () => false): NatsAuth {
  const typed = (k: keyof NatsAuthFlags) => flags[k] !== undefined && !fromEnv(k);
  const explicitUser = typed('natsUser') || typed('natsPass');
  const explicitToken = typed('natsToken');
  // A flag of one kind hides the environment's other kind, so `--nats-token` works with BNN_NATS_USER set.
  const value = (k: keyof NatsAuthFlags, hidden: boolean) => {
    if (typed(k)) return flags[k];
    return hidden || flags[k] === '' ? undefined : flags[k];
  };
  const auth = natsAuthFromFlags({
    natsUser: value('natsUser', explicitToken),
    natsPass: value('natsPass', explicitToken),
    natsToken: value('natsToken', explicitUser),
    natsTlsCa: value('natsTlsCa', false),
    natsTlsCert: value('natsTlsCert', false),
    natsTlsKey: value('natsTlsKey', false),
  });
  checkNatsTlsFiles(auth);
  return auth;
}
