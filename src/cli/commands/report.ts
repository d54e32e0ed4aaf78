import type { Command } from 'commander';
import { z } from 'zod';
import { jsonText, queryOutputFlags, queryOutputOf, type QueryOutputFlags } from '../../query/cli.js';
import { compareQueryFlags, compareQueryOf, type CompareFlags } from '../../query/compare.js';
import { DEFAULT_STORE_PATH, defaultQueryStoreOptions, withQueryStore } from '../../query/open.js';
import { parseOutPath } from '../../report/write.js';
import { action, type CommandContext } from '../command.js';
import { parseFlags, textFlag } from '../../config/flags.js';
import { addCompareQueryOptions } from './compare.js';
import { ENV, envOption } from '../../config/environment.js';

type ReportFlags = CompareFlags & Omit<QueryOutputFlags, 'csv'> & { out: string };

const flagsSchema = z.object({
  out: textFlag('a file name ending in .html, .htm or .md', parseOutPath),
  ...compareQueryFlags.shape,
  ...queryOutputFlags.shape,
});

/** `bnn report`: the comparison tables and charts of COMPLETED runs as one offline HTML or Markdown file. */
export function registerReport(program: Command, ctx: CommandContext): void {
  addCompareQueryOptions(
    program
      .command('report')
      .description(
        'write the comparison tables and charts (accuracy, size, energy, training curves) of COMPLETED runs to an offline HTML or Markdown file',
      )
      .requiredOption('--out <file>', 'report file: .html (self-contained) or .md (charts as SVG files in <name>-charts/ beside it)')
      .option('--runs <ids>', 'only these runs (comma-separated ids or unique id prefixes)'),
  )
    .option('--json', 'print what was written as JSON on stdout')
    .addOption(envOption('--store <file>', 'experiment database', ENV.store, DEFAULT_STORE_PATH))
    .option(
      '--lock-timeout-ms <ms>',
      'how long to wait for another process holding a lock',
      String(defaultQueryStoreOptions().lockTimeoutMs),
    )
    .action(
      action(ctx, async (raw: ReportFlags) => {
        const flags = parseFlags(flagsSchema, raw);
        const output = queryOutputOf(flags, (line) => ctx.io.stderr.write(`${line}\n`));
        const query = compareQueryOf(flags);
        const target = flags.out;
        // Loaded here: vega and vega-lite are large and only this command needs them.
        const report = await import('../../report/index.js');
        report.checkWritable(target);
        const data = withQueryStore(output.storePath, output.store, ({ db, path }) => report.gatherReport(db, query, path));
        const charts = await report.renderCharts(data);
        const content =
          target.format === 'html'
            ? report.renderHtml(data, charts)
            : report.renderMarkdown(data, charts, target.chartsDir!.split(/[\\/]/).pop()!);
        const files = report.writeReport(target, content, charts);
        if (output.mode === 'json') {
          ctx.io.stdout.write(
            jsonText({
              out: target.file,
              format: target.format,
              files,
              runs: data.runs.length,
              groups: data.compare.groups.length,
              charts: charts.map((c) => c.id),
            }),
          );
        } else {
          ctx.io.stderr.write(
            `wrote ${target.file}: ${data.runs.length} runs in ${data.compare.groups.length} groups, ${charts.length} charts\n`,
          );
        }
        return 0;
      }),
    );
}
