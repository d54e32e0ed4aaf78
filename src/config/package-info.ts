import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installed package's own metadata. Found by walking up from this file, so it works
 * from src/ (tsx) and from dist/src/ (compiled) alike.
 */

const PACKAGE_NAME = 'bnn-cluster';

let root: string | undefined;

/** Directory holding bnn-cluster's package.json (and drizzle/ migrations). */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string };
      if (pkg.name === PACKAGE_NAME) {
        root = dir;
        return root;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find ${PACKAGE_NAME}'s package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

let version: string | undefined;

export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}

let code: string | undefined;

/**
 * `<version>+g<short sha>` when the package is a git checkout, else `<version>`.
 * Recorded with every run so results can be traced to the code that made them.
 */
export function codeVersion(): string {
  if (code !== undefined) return code;
  let sha = '';
  try {
    sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: packageRoot(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2000,
    }).trim();
  } catch {
    // Not a checkout, or no git: the package version alone identifies the code.
  }
  code = /^[0-9a-f]{4,40}$/.test(sha) ? `${packageVersion()}+g${sha}` : packageVersion();
  return code;
}
