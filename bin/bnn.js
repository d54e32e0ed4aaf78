#!/usr/bin/env node
// The `bnn` command. Runs the compiled CLI from dist/; in a source checkout that has not
// been built, runs the TypeScript sources through tsx (a dev dependency) instead.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/src/cli/main.js', import.meta.url);

if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('bnn: error: the CLI is not built (no dist/); run `npm run build` first\n');
    process.exitCode = 1;
  }
  if (register) {
    register();
    await import(new URL('../src/cli/main.ts', import.meta.url).href);
  }
}
