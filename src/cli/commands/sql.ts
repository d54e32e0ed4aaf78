import type { Command } from 'commander';
import { addQueryOutputOptions, jsonText, parseQueryOutputFlags, type QueryOutputFlags } from '../../query/cli.js';
import { renderTable, toCsv } from '../../query/format.js';
import { runSql, type SqlResult } from '../../query/sql.js';
import { action, type CommandContext } from '../command.js';

/** `bnn sql "<SELECT …>"`: one read-only statement against the experiment database. */
export function registerSql(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('sql')
    .description('run one read-only SQL statement (SELECT, WITH, VALUES, EXPLAIN, read-only PRAGMA) against the experiment database')
    .argument('<statement>', 'the statement, quoted: "SELECT name, final_test_acc FROM runs"');
  addQueryOutputOptions(cmd).action(
    action(ctx, async (statement: string, flags: QueryOutputFlags) => {
      const output = parseQueryOutputFlags(flags, (line) => ctx.io.stderr.write(`${line}\n`));
      const result = runSql(output.storePath, statement, output.store);
      if (output.mode === 'json') ctx.io.stdout.write(jsonText(asObjects(result)));
      else if (output.mode === 'csv') ctx.io.stdout.write(toCsv(result.columns, result.rows));
      else {
        ctx.io.stdout.write(
          renderTable(
            result.columns.map((header) => ({ header })),
            result.rows.map((row) => row.map((v) => (v === null ? 'NULL' : String(v).replace(/\s*\n\s*/g, ' ')))),
          ),
        );
        ctx.io.stderr.write(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})\n`);
      }
      return 0;
    }),
  );
}

function asObjects({ columns, rows }: SqlResult): Record<string, unknown>[] {
  return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i]])));
}
