import { runCli } from './run.js';

// The `bnn` entry point, and the only place that exits the process (but for a second SIGINT or
// SIGTERM, which leaves at once: src/util/signals.ts): training engines can leave worker threads
// behind, so the exit is explicit.

// `bnn ... | head` closes stdout early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await runCli(process.argv.slice(2));
// Let buffered output reach its destination before exiting.
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
process.exit(code);
