import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { addonPath } from './addon.js';
import { requireAddon } from './testing.js';

// The addon must load and run on x86-64 CPUs without AVX2/AVX-512: only the per-ISA kernel
// files may contain such instructions, and all their code sits in anonymous namespaces
// (an inline function emitted from them could otherwise replace the baseline copy): the XNOR
// kernels' and the all-reduce codec's (native/src/codec).
test("isa - AVX/AVX-512 instructions appear only in the ISA kernel files' internal functions", (t) => {
  requireAddon();
  if (process.arch !== 'x64') return t.skip('x86-64 only');
  const r = spawnSync('objdump', ['-d', '--no-show-raw-insn', '-C', addonPath()], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.ifError(r.error);
  assert.equal(r.status, 0, r.stderr);
  const offenders = new Set<string>();
  const vectorFunctions = new Set<string>();
  let fn = '';
  for (const line of r.stdout.split('\n')) {
    const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
    if (head) {
      fn = head[1];
      continue;
    }
    if (!/%[yz]mm\d|%k[1-7]\b|\bvpopcnt|\bpopcnt\b/.test(line)) continue;
    vectorFunctions.add(fn);
    // Demangled names of template instances start with their return type.
    if (!/^(?:\w+ )?bnn::(?:xnor|codec(?:::ref)?)::\(anonymous namespace\)::/.test(fn)) offenders.add(fn);
  }
  assert.ok(vectorFunctions.size > 0, 'no AVX code found at all: were the ISA files built?');
  assert.deepEqual([...offenders], [], 'functions outside the ISA files use AVX/POPCNT instructions');
});
