import { COMPRESSIONS } from '../../collective/compression.js';
import type { Command } from 'commander';
import { z } from 'zod';
import type { AllReduceBenchReport, AllReduceBenchRow, CodecKernelTiming } from '../../bench/allreduce.js';
import { action, type CliIO, type CommandContext } from '../command.js';
import { choiceFlag, listFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { ALLREDUCE_ALGORITHMS } from '../../collective/options.js';

interface BenchAllreduceFlags {
  sizes: string;
  workers: string;
  compression: string;
  algorithm: string;
  repeats: string;
  maxPayload: string;
  ranks: string;
  codecElements: string;
  mac: string;
  json?: boolean;
}

/** `--compression a,b`: a comma-separated list of COMPRESSIONS (shared with `bnn bench-scaling`). */
export const compressionList = listFlag(choiceFlag(COMPRESSIONS));

const flagsSchema = z.object({
  sizes: listFlag(
    numberFlag(
      z
        .number()
        .positive()
        .max(1024)
        .refine((mb) => Number.isInteger(mb * 2 ** 18), 'a number of MiB holding whole fp32 values (a multiple of 4 bytes)'),
    ),
  ),
  workers: listFlag(numberFlag(z.number().int().min(1).max(64))),
  compression: compressionList,
  algorithm: listFlag(choiceFlag(ALLREDUCE_ALGORITHMS), { unique: true }),
  repeats: numberFlag(z.number().int().min(1).max(100)),
  maxPayload: numberFlag(
    z
      .number()
      .int()
      .min(1024)
      .max(64 * 2 ** 20),
  ),
  ranks: choiceFlag(['process', 'threads']),
  mac: listFlag(choiceFlag(['on', 'off']), { unique: true }),
  codecElements: numberFlag(
    z
      .number()
      .int()
      .min(0)
      .max(2 ** 26),
  ),
});

const fmtBytes = (b: number) => (b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(b >= 10 * 2 ** 20 ? 0 : 1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);
const gbps = (bps: number) => (bps / 1e9).toFixed(2);

/** `bnn bench-allreduce`: the NATS gradient all-reduce against raw pub/sub of the same payload, measured in one run. */
export function registerBenchAllreduce(program: Command, ctx: CommandContext): void {
  configureBenchAllreduce(program.command('bench-allreduce'), ctx);
  // also `bnn bench allreduce`, when `bnn bench` is registered before this command
  const bench = program.commands.find((c) => c.name() === 'bench');
  if (bench) configureBenchAllreduce(bench.command('allreduce'), ctx);
}

function configureBenchAllreduce(cmd: Command, ctx: CommandContext): void {
  cmd
    .description(
      'measure the NATS gradient all-reduce (time, bus/effective bandwidth, bytes moved) next to raw NATS pub/sub; starts its own nats-server',
    )
    .option('--sizes <MiB,...>', 'gradient sizes in MiB of fp32', '1,4,16,64')
    .option('--workers <N,...>', 'world sizes (ranks run in this process, one NATS connection each)', '2,4')
    .option('--compression <modes>', `comma-separated: ${COMPRESSIONS.join(', ')}`, COMPRESSIONS.join(','))
    .option(
      '--algorithm <names>',
      `comma-separated: ${ALLREDUCE_ALGORITHMS.join(', ')} (auto: allgather for N <= 2, reduce-scatter above)`,
      'auto',
    )
    .option('--repeats <n>', 'timed repetitions per configuration after one warm-up (median reported)', '5')
    .option('--max-payload <bytes>', 'nats-server max_payload', String(2 ** 20))
    .option('--ranks <where>', "'threads': one worker thread per rank; 'process': all ranks on this event loop", 'threads')
    .option('--codec-elements <n>', 'vector length of the codec kernel timing (0 skips it)', String(2 ** 22))
    .option(
      '--mac <on,off>',
      "'on': every message carries its MAC, as in runs; 'on,off': both, in alternation within each repetition (the MAC's cost)",
      'on',
    )
    .option('--json', 'print the report as JSON')
    .action(
      action(ctx, (given: BenchAllreduceFlags, self: Command) =>
        // under `bnn bench allreduce`, `bench`'s own --json comes in as a global option
        runBenchAllreduce({ ...given, json: given.json || self.optsWithGlobals().json === true }, ctx.io),
      ),
    );
}

/** Runs the benchmark and prints its report; 1 when a row's sum was not exact. */
async function runBenchAllreduce(raw: BenchAllreduceFlags, io: CliIO): Promise<number> {
  const flags = parseFlags(flagsSchema, raw);
  const { benchAllreduce } = await import('../../bench/allreduce.js');
  const report = await benchAllreduce({
    sizesBytes: flags.sizes.map((mb) => Math.round(mb * 2 ** 20)),
    workers: flags.workers,
    compressions: flags.compression,
    algorithms: flags.algorithm,
    repeats: flags.repeats,
    maxPayloadBytes: flags.maxPayload,
    ranksIn: flags.ranks,
    codecElements: flags.codecElements,
    mac: flags.mac.map((m) => m === 'on'),
    progress: raw.json ? undefined : (line) => io.stderr.write(`${line}\n`),
  });
  if (raw.json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }
  io.stdout.write(`${reportLines(report, flags.repeats).join('\n')}\n`);
  return report.rows.some((r) => r.exact === false) ? 1 : 0;
}

/** The report for people: the setup, the all-reduce table, the load and, when timed, the codec kernels' table. */
function reportLines(report: AllReduceBenchReport, repeats: number): string[] {
  const out: string[] = [];
  out.push(`bnn bench-allreduce: ${report.setup}`);
  out.push(
    `nats-server max_payload ${report.server.maxPayloadBytes} B, max_pending ${fmtBytes(report.server.maxPendingBytes)}; median of ${repeats} after a warm-up; GB = 1e9 bytes`,
  );
  out.push('bus bw = size × 2(N−1)/N / time; effective = fp32 size / time; wire = bytes all ranks published per step');
  out.push(
    `raw = one publisher sending the same payload to one subscriber in ${report.rows[0]?.rawMessageBytes ?? '-'}-byte messages, timed in alternation with the all-reduce`,
  );
  out.push('');
  out.push(...allreduceTable(report.rows));
  out.push(...macCostLines(report.rows));
  out.push('');
  out.push(
    `load average ${report.loadAverage.before.toFixed(2)} before, ${report.loadAverage.after.toFixed(2)} after; the ranks ran the ${report.codecKernels} codec kernels`,
  );
  if (report.codec.length > 0) {
    out.push('codec kernels, ns per element, one thread (sign-ef encode includes the error feedback and the decoded copy):');
    out.push(...codecTable(report.codec));
  }
  return out;
}

/** One line per measured configuration under a header; the first four columns left-aligned, figures right-aligned. */
function allreduceTable(reportRows: AllReduceBenchRow[]): string[] {
  const header = [
    'size',
    'N',
    'compression',
    'algorithm',
    'mac',
    'median ms',
    'bus GB/s',
    'raw ms',
    'raw GB/s',
    'bus/raw',
    'eff GB/s',
    'wire/step',
    'fewer bytes',
    'exact',
  ];
  const rows = reportRows.map((r) => [
    fmtBytes(r.sizeBytes),
    String(r.workers),
    r.compression,
    r.algorithm,
    r.mac ? 'on' : 'off',
    r.medianMs.toFixed(1),
    gbps(r.busBytesPerSecond),
    r.rawMedianMs.toFixed(1),
    gbps(r.rawPubSubBytesPerSecond),
    `${(r.busOverRaw * 100).toFixed(0)}%`,
    gbps(r.effectiveBytesPerSecond),
    fmtBytes(r.wireBytesPerStep),
    `${r.wireReduction.toFixed(1)}×`,
    r.exact === null ? '-' : r.exact ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i <= 4 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), ...rows.map(line)];
}

/** For configurations measured with and without the MAC: the MAC's share of the step time. */
function macCostLines(rows: AllReduceBenchRow[]): string[] {
  const out: string[] = [];
  for (const on of rows.filter((r) => r.mac)) {
    const off = rows.find(
      (r) =>
        !r.mac &&
        r.sizeBytes === on.sizeBytes &&
        r.workers === on.workers &&
        r.compression === on.compression &&
        r.algorithm === on.algorithm,
    );
    if (!off) continue;
    const cost = (on.medianMs / off.medianMs - 1) * 100;
    out.push(
      `MAC cost, ${fmtBytes(on.sizeBytes)} N=${on.workers} ${on.compression} ${on.algorithm}: ${cost >= 0 ? '+' : ''}${cost.toFixed(1)}% (median ${on.medianMs.toFixed(1)} ms with, ${off.medianMs.toFixed(1)} ms without)`,
    );
  }
  return out.length > 0 ? ['', ...out] : out;
}

/** One line per codec implementation: ns per element of each kernel. */
function codecTable(codec: CodecKernelTiming[]): string[] {
  const ch = ['kernels', 'sign-ef enc', 'sign-ef dec+add', 'fp16 enc', 'fp16 dec+add', 'fp32 add'];
  const cr = codec.map((c) => [
    c.kernels,
    ...[c.signEncodeNs, c.signAccumulateNs, c.halfEncodeNs, c.halfAccumulateNs, c.addF32Ns].map((x) => x.toFixed(2)),
  ]);
  const cw = ch.map((h, i) => Math.max(h.length, ...cr.map((r) => (r[i] as string).length)));
  const cl = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(cw[i] as number) : c.padStart(cw[i] as number))).join('  ');
  return [cl(ch), ...cr.map(cl)];
}
