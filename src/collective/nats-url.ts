// Credentials carried in NATS urls (`nats://user:pass@host:port`, `nats://token@host:port`):
// split off before connecting, embedded when a coordinator hands its url to workers, and
// redacted wherever a url is logged. No `nats` import here, so the coordinator can use it.
import { accessSync, constants } from 'node:fs';

/** How a client authenticates to nats-server; every field optional. */
export interface NatsAuth {
  /** Username for user/password authentication. */
  user?: string;
  /** Password for user/password authentication. */
  password?: string;
  /** Authentication token (exclusive with user/password). */
  token?: string;
  /** TLS files; setting any enables TLS (`caFile` alone: verify the server only). */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/** Credential flags of a NATS client that conflict or are incomplete. */
export class NatsAuthConfigError extends Error {
  readonly userFacing = true as const;
  readonly exitCode = 2 as const;
  constructor(message: string) {
    super(message);
    this.name = 'NatsAuthConfigError';
  }
}

function parse(url: string): URL | null {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return null;
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** The url without credentials, and the credentials it carried (percent-decoded). */
export function splitNatsUrl(url: string): { url: string; auth: NatsAuth } {
  const u = parse(url);
  if (!u || (u.username === '' && u.password === '')) return { url, auth: {} };
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  const afterScheme = url.slice(url.indexOf('//') + 2);
  const hasPassword = afterScheme.slice(0, afterScheme.lastIndexOf('@')).includes(':');
  u.username = '';
  u.password = '';
  const bare = u.toString().replace(/\/$/, '');
  // `nats://secret@host` is a token, `nats://user:pass@host` a user and password.
  return { url: bare, auth: hasPassword ? { user, password } : { token: user } };
}

/** A `--nats` seed list with an entry that is not a NATS server url. */
export class NatsUrlError extends Error {
  readonly userFacing = true as const;
  readonly exitCode = 2 as const;
  constructor(message: string) {
    super(message);
    this.name = 'NatsUrlError';
  }
}

const NATS_SCHEMES = new Set(['nats:', 'tls:']);

/**
 * A seed list of NATS servers, from one or more flag values each holding one url or several
 * comma-separated (`nats://a:4222,nats://b:4222`): every entry checked (scheme nats:// or tls://,
 * a host, a port from 1 to 65535, nothing after it), a bare `host:port` taken as `nats://host:port`,
 * duplicates refused. Errors name the flag and the bad entry (credentials redacted).
 */
export function parseNatsServers(values: string | readonly string[], flag = '--nats'): string[] {
  const entries = (typeof values === 'string' ? [values] : values).flatMap((v) => v.split(',')).map((e) => e.trim());
  if (entries.length === 0 || entries.every((e) => e === '')) throw new NatsUrlError(`${flag}: no NATS url given`);
  const out: string[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const where = `${flag} entry ${i + 1} '${redactNatsUrl(entry)}'`;
    if (entry === '') throw new NatsUrlError(`${flag} entry ${i + 1} is empty (a stray comma?)`);
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(entry) ? entry : `nats://${entry}`;
    const u = parse(withScheme);
    if (!u) throw new NatsUrlError(`${where} is not a url: expected nats://host:4222`);
    if (!NATS_SCHEMES.has(u.protocol)) throw new NatsUrlError(`${where}: scheme ${u.protocol}// is not nats:// or tls://`);
    if (u.hostname === '') throw new NatsUrlError(`${where} has no host`);
    if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '')
      throw new NatsUrlError(`${where}: a NATS url is scheme://[credentials@]host[:port], nothing after the port`);
    const port = /:(\d*)$/.exec(withScheme.slice(withScheme.lastIndexOf('@') + 1).replace(/\/$/, ''));
    if (port && (port[1] === '' || Number(port[1]) < 1 || Number(port[1]) > 65535))
      throw new NatsUrlError(`${where}: port must be 1 to 65535`);
    const bare = splitNatsUrl(withScheme.replace(/\/$/, '')).url;
    if (seen.has(bare)) throw new NatsUrlError(`${where} is listed twice`);
    seen.add(bare);
    out.push(withScheme.replace(/\/$/, ''));
  });
  return out;
}

/** The urls of a comma-separated seed list (as carried in an assignment's `nats_url`), without validation. */
export function natsServerList(list: string): string[] {
  return list
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
}

/**
 * The urls of a seed list without credentials, and the one credential set they carry (the same
 * in every entry that carries any; different ones are an error, as one connection logs in once).
 */
export function splitNatsServers(urls: readonly string[]): { urls: string[]; auth: NatsAuth } {
  const split = urls.map(splitNatsUrl);
  let auth: NatsAuth = {};
  for (const s of split) {
    if (s.auth.user === undefined && s.auth.token === undefined) continue;
    if (auth.user === undefined && auth.token === undefined) auth = s.auth;
    else if (auth.user !== s.auth.user || auth.password !== s.auth.password || auth.token !== s.auth.token)
      throw new NatsAuthConfigError(
        `the NATS urls ${urls.map(redactNatsUrl).join(', ')} carry different credentials: give one set (in every url, or with --nats-user/--nats-pass/--nats-token)`,
      );
  }
  return { urls: split.map((s) => s.url), auth };
}

/**
 * `url` with the credentials of `auth` embedded (user/password or token); TLS files cannot travel
 * in a url. A comma-separated seed list gets them in every entry.
 */
export function natsUrlWithAuth(url: string, auth: NatsAuth): string {
  if (auth.user === undefined && auth.token === undefined) return url;
  if (url.includes(','))
    return natsServerList(url)
      .map((u) => natsUrlWithAuth(u, auth))
      .join(',');
  const u = parse(url);
  if (!u) throw new NatsAuthConfigError(`cannot attach NATS credentials to '${redactNatsUrl(url)}': expected a url like nats://host:4222`);
  if (auth.token !== undefined) u.username = encodeURIComponent(auth.token);
  else {
    u.username = encodeURIComponent(auth.user!);
    u.password = encodeURIComponent(auth.password ?? '');
  }
  return u.toString().replace(/\/$/, '');
}

/** `url` (or a comma-separated seed list, each entry alone) with any embedded credentials replaced by `***`, fit for logs. */
export function redactNatsUrl(url: string): string {
  return url
    .split(',')
    .map((entry) => {
      const at = entry.lastIndexOf('@');
      if (at < 0) return entry;
      const scheme = /^\s*[a-z][a-z0-9+.-]*:\/\//i.exec(entry);
      // everything between the scheme (if any) and the last `@` is userinfo, whatever characters it holds
      return `${scheme ? scheme[0] : ''}***${entry.slice(at)}`;
    })
    .join(',');
}

/**
 * One credential set from flags (and env), validated: user needs a password, a token excludes
 * both, TLS cert and key come together. `flags` are already defaulted from the environment.
 */
export function natsAuthFromFlags(flags: {
  natsUser?: string | undefined;
  natsPass?: string | undefined;
  natsToken?: string | undefined;
  natsTlsCa?: string | undefined;
  natsTlsCert?: string | undefined;
  natsTlsKey?: string | undefined;
}): NatsAuth {
  const { natsUser: user, natsPass: password, natsToken: token, natsTlsCa: caFile, natsTlsCert: certFile, natsTlsKey: keyFile } = flags;
  if (token !== undefined && (user !== undefined || password !== undefined)) {
    throw new NatsAuthConfigError('--nats-token excludes --nats-user/--nats-pass: give one way to authenticate to NATS');
  }
  if ((user === undefined) !== (password === undefined)) {
    throw new NatsAuthConfigError(
      user === undefined ? '--nats-pass needs --nats-user (or BNN_NATS_USER)' : '--nats-user needs --nats-pass (or BNN_NATS_PASS)',
    );
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new NatsAuthConfigError(certFile === undefined ? '--nats-tls-key needs --nats-tls-cert' : '--nats-tls-cert needs --nats-tls-key');
  }
  const auth: NatsAuth = {};
  if (user !== undefined) Object.assign(auth, { user, password });
  if (token !== undefined) auth.token = token;
  if (caFile !== undefined || certFile !== undefined) {
    auth.tls = { ...(caFile !== undefined ? { caFile } : {}), ...(certFile !== undefined ? { certFile, keyFile } : {}) };
  }
  return auth;
}

/** Fields of `over` replace those of `base` by kind: a user/password or a token in `over` replaces both of `base`'s. */
export function mergeNatsAuth(base: NatsAuth, over: NatsAuth): NatsAuth {
  const merged: NatsAuth =
    over.user !== undefined || over.token !== undefined
      ? {
          ...(over.user !== undefined ? { user: over.user, password: over.password ?? '' } : {}),
          ...(over.token !== undefined ? { token: over.token } : {}),
        }
      : {
          ...(base.user !== undefined ? { user: base.user, password: base.password ?? '' } : {}),
          ...(base.token !== undefined ? { token: base.token } : {}),
        };
  const tls = over.tls ?? base.tls;
  if (tls) merged.tls = tls;
  return merged;
}

/** Each TLS file of `auth` must be readable; the error names its flag and file. */
export function checkNatsTlsFiles(auth: NatsAuth): void {
  const flags: Array<[string, string | undefined]> = [
    ['--nats-tls-ca', auth.tls?.caFile],
    ['--nats-tls-cert', auth.tls?.certFile],
    ['--nats-tls-key', auth.tls?.keyFile],
  ];
  for (const [flag, file] of flags) {
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new NatsAuthConfigError(
        `${flag} ${file} ${code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read (${(err as Error).message})`}`,
      );
    }
  }
}
