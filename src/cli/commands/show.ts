import type { Command } from 'commander';
import YAML from 'yaml';
import { addQueryOutputOptions, jsonText, parseQueryOutputFlags, type QueryOutputFlags } from '../../query/cli.js';
import { joulesPerSampleOf } from '../../query/energy.js';
import { bytes, count, duration, fixed, joulesPerSample, pct, renderTable, sparkline, toCsv } from '../../query/format.js';
import { abandonedNote } from '../../query/liveness.js';
import { withQueryStore } from '../../query/open.js';
import { runDetail, type RunDetail } from '../../query/show.js';
import { runOwner } from '../../store/runs.js';
import type { EpochMetricsRow } from '../../store/schema.js';
import { describeOwner, type OwnerVerdict, type ProcessOwner } from '../../util/process-owner.js';
import { action, type CommandContext } from '../command.js';

const EPOCH_CSV: readonly [string, (e: EpochMetricsRow) => unknown][] = [
  ['epoch', (e) => e.epoch],
  ['train_loss', (e) => e.trainLoss],
  ['train_acc', (e) => e.trainAcc],
  ['test_loss', (e) => e.testLoss],
  ['test_acc', (e) => e.testAcc],
  ['lr', (e) => e.lr],
  ['samples_per_s', (e) => e.samplesPerS],
  ['epoch_time_s', (e) => e.epochTimeS],
];

/** `bnn show <run>`: one run's row, config, epochs, checkpoints and events. */
export function registerShow(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('show')
    .description('show one run: results, config, per-epoch metrics, checkpoints and events (--csv: the epochs)')
    .argument('<run>', 'run id or a unique prefix of it');
  addQueryOutputOptions(cmd).action(
    action(ctx, async (id: string, flags: QueryOutputFlags) => {
      const output = parseQueryOutputFlags(flags, (line) => ctx.io.stderr.write(`${line}\n`));
      const detail = withQueryStore(output.storePath, output.store, ({ db }) => runDetail(db, id));
      if (output.mode === 'json') ctx.io.stdout.write(jsonText(detail));
      else if (output.mode === 'csv') {
        ctx.io.stdout.write(
          toCsv(
            EPOCH_CSV.map(([h]) => h),
            detail.epochs.map((e) => EPOCH_CSV.map(([, get]) => get(e))),
          ),
        );
      } else ctx.io.stdout.write(showText(detail, output.storePath));
      return 0;
    }),
  );
}

/** The status, with why an ABANDONED run is one and why a PENDING run waits. */
function statusText(run: RunDetail['run'], storePath: string): string {
  if (run.status === 'ABANDONED') return `ABANDONED (${abandonedNote(run, storePath)})`;
  return run.waiting ? `${run.status} (${run.waiting})` : run.status;
}

function showText({ run, epochs, checkpoints, events }: RunDetail, storePath: string): string {
  const fields: [string, string][] = [
    ['id', run.id],
    ['name', run.name],
    ['status', statusText(run, storePath)],
    ['model', run.model],
    ['precision', run.precision],
    ['dataset', run.dataset],
    ['seed', String(run.seed)],
    ['tags', run.tags.length === 0 ? '-' : run.tags.join(', ')],
    ['backend', `${run.backend} (${run.threads} thread${run.threads === 1 ? '' : 's'})`],
    ['code version', run.codeVersion],
    ['config hash', run.configHash],
    ['created', run.createdAt],
    ['started', run.startedAt ?? '-'],
    ['finished', run.finishedAt ?? '-'],
    ['final test acc', pct(run.finalTestAcc)],
    ['best test acc', pct(run.bestTestAcc)],
    ['model size', `${bytes(run.modelSizeBytes)} fp32, ${bytes(run.packedSizeBytes)} packed`],
    ['wall time', duration(run.wallTimeS)],
    ['samples/s', count(run.samplesPerS)],
    ['energy', energyText(run)],
  ];
  if (run.error !== null) fields.push(['error', run.error]);
  const owner = runOwner(run);
  if (owner !== null && run.liveness !== null) fields.push(['owner', ownerText(owner, run.liveness)]);
  const labelWidth = Math.max(...fields.map(([k]) => k.length)) + 1;
  const parts: string[] = [fields.map(([k, v]) => `${`${k}:`.padEnd(labelWidth)} ${v}`).join('\n')];

  parts.push(`config:\n${indent(YAML.stringify(run.config).trimEnd())}`);

  if (epochs.length === 0) parts.push('epochs: none recorded');
  else {
    const accs = epochs.map((e) => e.testAcc);
    const present = accs.filter((a): a is number => a !== null);
    const range = present.length === 0 ? 'no test accuracy recorded' : `${pct(Math.min(...present))} → ${pct(Math.max(...present))}`;
    parts.push(
      `epochs (${epochs.length}):  test acc ${sparkline(accs)}  ${range}\n` +
        indent(
          renderTable(
            [
              { header: 'EPOCH', align: 'right' },
              { header: 'TRAIN LOSS', align: 'right' },
              { header: 'TRAIN ACC', align: 'right' },
              { header: 'TEST LOSS', align: 'right' },
              { header: 'TEST ACC', align: 'right' },
              { header: 'LR', align: 'right' },
              { header: 'SAMPLES/S', align: 'right' },
              { header: 'TIME', align: 'right' },
            ],
            epochs.map((e) => [
              String(e.epoch),
              fixed(e.trainLoss, 4),
              pct(e.trainAcc),
              fixed(e.testLoss, 4),
              pct(e.testAcc),
              e.lr.toExponential(2),
              count(e.samplesPerS),
              duration(e.epochTimeS),
            ]),
          ).trimEnd(),
        ),
    );
  }

  if (checkpoints.length === 0) parts.push('checkpoints: none');
  else {
    parts.push(
      `checkpoints (${checkpoints.length}):\n` +
        indent(
          renderTable(
            [
              { header: 'EPOCH', align: 'right' },
              { header: 'STEP', align: 'right' },
              { header: 'SHA256' },
              { header: 'BYTES', align: 'right' },
              { header: 'PATH' },
            ],
            checkpoints.map((c) => [String(c.epoch), String(c.step), c.sha256.slice(0, 12), bytes(c.bytes), c.path]),
          ).trimEnd(),
        ),
    );
  }

  if (events.length === 0) parts.push('events: none');
  else {
    parts.push(
      `events (${events.length}):\n` +
        indent(
          renderTable(
            [{ header: 'AT' }, { header: 'KIND' }, { header: 'DETAIL' }],
            events.map((e) => [e.at, e.kind, e.detail === null || Object.keys(e.detail).length === 0 ? '' : JSON.stringify(e.detail)]),
          ).trimEnd(),
        ),
    );
  }
  return `${parts.join('\n\n')}\n`;
}

/** The run's energy from its totals: joules, sources (estimates labelled) and J/sample where known. */
function energyText(run: RunDetail['run']): string {
  if (run.energyJoules === null || run.energySources === null) return '-';
  const perSample = joulesPerSampleOf(run);
  const estimate = run.energySources.split('+').includes('estimate') ? ', estimate: CPU time × assumed watts per core' : '';
  const joules = `${run.energyJoules.toPrecision(4)} J (${run.energySources}${estimate})`;
  return perSample === undefined
    ? `${joules}; J/sample unknown (no epoch metrics)`
    : `${joules}; ${joulesPerSample(perSample.joulesPerSample, null)}/sample over ${count(run.trainedSamples)} samples`;
}

/** `pid 4242 on node-a (running)`; where it cannot be checked, why. */
function ownerText(owner: ProcessOwner, liveness: OwnerVerdict): string {
  if (liveness.state === 'alive') return `${describeOwner(owner)} (running)`;
  if (liveness.state === 'gone') return `${describeOwner(owner)} (gone)`;
  return `${describeOwner(owner)} (cannot tell whether it still runs: ${liveness.why})`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l === '' ? l : `  ${l}`))
    .join('\n');
}
