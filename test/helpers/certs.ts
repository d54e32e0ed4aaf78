import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OPENSSL = process.env.OPENSSL_BIN ?? '/usr/bin/openssl';

export interface TestCerts {
  /** The CA that signed the server and client certificates. */
  ca: string;
  /** Server certificate (SAN IP:127.0.0.1, DNS:localhost) and key. */
  serverCert: string;
  serverKey: string;
  /** Client certificate (CN=worker) and key, signed by `ca`. */
  clientCert: string;
  clientKey: string;
  /** A second, unrelated CA, and a client certificate it signed. */
  otherCa: string;
  otherClientCert: string;
  otherClientKey: string;
}

function openssl(args: string[]): void {
  execFileSync(OPENSSL, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function ca(dir: string, name: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

function leaf(dir: string, name: string, signer: { cert: string; key: string }, ext: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `${ext}\n`);
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    `/CN=${name}`,
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    signer.cert,
    '-CAkey',
    signer.key,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '2',
    '-extfile',
    extFile,
  ]);
  return { cert, key };
}

/** A CA, a server and a client certificate it signed, and an unrelated CA with its own client certificate, under `dir`. */
export function makeTestCerts(dir: string): TestCerts {
  const main = ca(dir, 'test-ca');
  const other = ca(dir, 'other-ca');
  const server = leaf(dir, 'server', main, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  const client = leaf(dir, 'worker', main, 'extendedKeyUsage=clientAuth');
  const rogue = leaf(dir, 'rogue-worker', other, 'extendedKeyUsage=clientAuth');
  return {
    ca: main.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    otherCa: other.cert,
    otherClientCert: rogue.cert,
    otherClientKey: rogue.key,
  };
}
