// TLS material for the coordinator's gRPC port: file paths from flags → checked PEM buffers.
// Every check runs before any socket is opened, and each error names the flag and the file.
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';

/** Certificate files of the server side (`bnn coordinator`). */
export interface ServerTlsFiles {
  /** PEM certificate chain the coordinator presents (`--tls-cert`). */
  certFile: string;
  /** PEM private key of that certificate (`--tls-key`). */
  keyFile: string;
  /** PEM CA bundle; when set, clients must present a certificate it signed: mutual TLS (`--tls-ca`). */
  caFile?: string;
}

/** Certificate files of the client side (`bnn worker`, `bnn launch --coordinator`). */
export interface ClientTlsFiles {
  /** PEM CA bundle that signed the coordinator's certificate (`--tls-ca`); default: the system's roots. */
  caFile?: string;
  /** PEM client certificate for mutual TLS (`--tls-cert`); needs `keyFile`. */
  certFile?: string;
  /** PEM private key of the client certificate (`--tls-key`); needs `certFile`. */
  keyFile?: string;
  /** Name to verify the coordinator's certificate against instead of the host in the address (`--tls-server-name`). */
  serverName?: string;
}

/** Loaded and checked server TLS material. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** Set: client certificates are required and verified against it. */
  ca: Buffer | null;
}

/** Loaded and checked client TLS material. */
export interface ClientTls {
  ca: Buffer | null;
  cert: Buffer | null;
  key: Buffer | null;
  serverName?: string;
}

/** A TLS flag names a file that is missing, unreadable, not PEM of the right kind, or does not fit its pair. */
export class TlsConfigError extends Error {
  readonly userFacing = true as const;
  readonly exitCode = 2 as const;
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TlsConfigError';
  }
}

function readPem(flag: string, file: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory'
            : `cannot be read (${(err as Error).message})`;
    throw new TlsConfigError(`${flag} ${file} ${why}`, { cause: err });
  }
  if (!data.includes('-----BEGIN ')) throw new TlsConfigError(`${flag} ${file} is not a PEM file (no '-----BEGIN' line)`);
  return data;
}

function certificate(flag: string, file: string, pem: Buffer, now: number): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new TlsConfigError(`${flag} ${file} does not hold a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  if (Date.parse(cert.validTo) < now) throw new TlsConfigError(`${flag} ${file}: the certificate expired on ${cert.validTo}`);
  if (Date.parse(cert.validFrom) > now) throw new TlsConfigError(`${flag} ${file}: the certificate is not valid before ${cert.validFrom}`);
  return cert;
}

function privateKey(flag: string, file: string, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new TlsConfigError(`${flag} ${file} does not hold an unencrypted PEM private key: ${(err as Error).message}`, { cause: err });
  }
}

function keyPair(certFile: string, keyFile: string, now: number): { cert: Buffer; key: Buffer } {
  const cert = readPem('--tls-cert', certFile);
  const key = readPem('--tls-key', keyFile);
  const x509 = certificate('--tls-cert', certFile, cert, now);
  if (!x509.checkPrivateKey(privateKey('--tls-key', keyFile, key))) {
    throw new TlsConfigError(`--tls-key ${keyFile} does not match the certificate in --tls-cert ${certFile}`);
  }
  return { cert, key };
}

/** Reads and checks the coordinator's certificate, key and (for mutual TLS) client CA. */
export function loadServerTls(files: ServerTlsFiles, now = Date.now()): ServerTls {
  const { cert, key } = keyPair(files.certFile, files.keyFile, now);
  let ca: Buffer | null = null;
  if (files.caFile !== undefined) {
    ca = readPem('--tls-ca', files.caFile);
    certificate('--tls-ca', files.caFile, ca, now);
  }
  return { cert, key, ca };
}

/** Reads and checks the client's CA and (for mutual TLS) its certificate and key. */
export function loadClientTls(files: ClientTlsFiles, now = Date.now()): ClientTls {
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    throw new TlsConfigError(
      files.certFile === undefined
        ? '--tls-key needs --tls-cert (the client certificate it belongs to)'
        : '--tls-cert needs --tls-key (its private key)',
    );
  }
  let ca: Buffer | null = null;
  if (files.caFile !== undefined) {
    ca = readPem('--tls-ca', files.caFile);
    certificate('--tls-ca', files.caFile, ca, now);
  }
  const pair = files.certFile !== undefined && files.keyFile !== undefined ? keyPair(files.certFile, files.keyFile, now) : null;
  return { ca, cert: pair?.cert ?? null, key: pair?.key ?? null, ...(files.serverName ? { serverName: files.serverName } : {}) };
}

/** Server flags → files: none given is plaintext (null); a partial set is a usage error. */
export function serverTlsFiles(flags: { tlsCert?: string; tlsKey?: string; tlsCa?: string }): ServerTlsFiles | null {
  const { tlsCert, tlsKey, tlsCa } = flags;
  if (tlsCert === undefined && tlsKey === undefined) {
    if (tlsCa !== undefined)
      throw new TlsConfigError("--tls-ca (mutual TLS) needs --tls-cert and --tls-key (the coordinator's own certificate)");
    return null;
  }
  if (tlsCert === undefined) throw new TlsConfigError('--tls-key needs --tls-cert (the certificate it belongs to)');
  if (tlsKey === undefined) throw new TlsConfigError('--tls-cert needs --tls-key (its private key)');
  return { certFile: tlsCert, keyFile: tlsKey, ...(tlsCa !== undefined ? { caFile: tlsCa } : {}) };
}

/** Client flags → files: TLS is on with `--tls` or any `--tls-*` file; otherwise plaintext (null). */
export function clientTlsFiles(flags: {
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}): ClientTlsFiles | null {
  const { tls, tlsCa, tlsCert, tlsKey, tlsServerName } = flags;
  if (!tls && tlsCa === undefined && tlsCert === undefined && tlsKey === undefined) {
    if (tlsServerName !== undefined)
      throw new TlsConfigError('--tls-server-name applies to TLS only: add --tls-ca <file> (or --tls to trust the system roots)');
    return null;
  }
  return {
    ...(tlsCa !== undefined ? { caFile: tlsCa } : {}),
    ...(tlsCert !== undefined ? { certFile: tlsCert } : {}),
    ...(tlsKey !== undefined ? { keyFile: tlsKey } : {}),
    ...(tlsServerName !== undefined ? { serverName: tlsServerName } : {}),
  };
}

/**
 * True when `host:port` answers a TLS ClientHello with a handshake (or a TLS alert): used to
 * tell a user whose plaintext client failed that the server wants TLS. Never throws.
 */
export function probeTls(address: string, timeoutMs = 2000): Promise<boolean> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port)) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const done = (v: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => done(true));
    // An alert is still TLS talking (e.g. mutual TLS refusing a client without a certificate).
    socket.on('error', (err) => done(/alert|certificate|handshake/i.test(err.message) && !/wrong version number/i.test(err.message)));
    const timer = setTimeout(() => done(false), timeoutMs);
  });
}
