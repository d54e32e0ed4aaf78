import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from 'commander';
import { flagName } from '../config/flags.js';
import { commandContext } from './command.js';
import { buildProgram } from './index.js';

test('flags - flagName is the flag as typed, for every option of every command', () => {
  const seen: string[] = [];
  const visit = (cmd: Command) => {
    for (const option of cmd.options) {
      if (option.long === undefined) continue;
      assert.equal(flagName(option.attributeName()), option.long.replace(/^--no-/, '--'), `${cmd.name()} ${option.long}`);
      seen.push(option.long);
    }
    cmd.commands.forEach(visit);
  };
  visit(buildProgram(commandContext()));
  assert.ok(seen.includes('--threads-per-worker') && seen.includes('--lock-timeout-ms'), 'the commands were visited');
});
