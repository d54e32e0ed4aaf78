import type { Command } from 'commander';
import { z } from 'zod';
import { DATASET_NAMES } from '../../config/schema.js';
import { action, type CommandContext } from '../command.js';
import { choiceFlag, numberFlag, parseFlags } from '../../config/flags.js';
import { UserError } from '../../util/errors.js';

interface PredictFlags {
  dataset: string;
  split: string;
  limit?: string;
  batchSize: string;
  threads: string;
  json?: boolean;
}

const flagsSchema = z.object({
  dataset: choiceFlag(DATASET_NAMES),
  split: choiceFlag(['test', 'train']),
  limit: numberFlag(z.number().int().min(1)).optional(),
  batchSize: numberFlag(z.number().int().min(1)),
  threads: numberFlag(z.number().int().min(0).max(1024)),
});

/** `bnn predict <model>`: runs a packed model with the XNOR kernels over a data set split. */
export function registerPredict(program: Command, ctx: CommandContext): void {
  program
    .command('predict')
    .description('run a packed model (bnn export) with the XNOR kernels and report accuracy and throughput')
    .argument('<model>', 'packed model file written by bnn export')
    .option('--dataset <name>', 'data set to classify', 'fashion-mnist')
    .option('--split <split>', 'train or test', 'test')
    .option('--limit <n>', 'classify only the first n samples')
    .option('--batch-size <n>', 'samples per batch', '256')
    .option('--threads <n>', 'native threads (0 = all cores)', '0')
    .option('--json', 'print the result as JSON')
    .action(
      action(ctx, async (file: string, flags: PredictFlags) => {
        const { dataset, split: splitName, limit, batchSize, threads } = parseFlags(flagsSchema, flags);
        const { loadNative } = await import('../../native/addon.js');
        const { loadPackedModel } = await import('../../export/runtime.js');
        const { loadDataset } = await import('../../data/index.js');
        const native = loadNative();
        if (!native.addon) throw new UserError(`bnn predict needs the native addon: ${native.reason}`);
        if (threads > 0) native.addon.setThreads(threads);
        const model = await loadPackedModel(file, native.addon);
        const ds = await loadDataset({ name: dataset } as Parameters<typeof loadDataset>[0]);
        const split = splitName === 'test' ? ds.test : ds.train;
        const n = Math.min(split.n, limit ?? split.n);
        const per = ds.shape[0] * ds.shape[1] * ds.shape[2];
        const expected = model.layout.inputShape[0] * model.layout.inputShape[1] * model.layout.inputShape[2];
        if (per !== expected) {
          throw new UserError(`${file}: model expects ${model.layout.inputShape.join('x')} inputs, ${dataset} has ${ds.shape.join('x')}`);
        }
        let correct = 0;
        let seconds = 0;
        const classes = model.layout.numClasses;
        for (let start = 0; start < n; start += batchSize) {
          const b = Math.min(batchSize, n - start);
          const raw = split.images.subarray(start * per, (start + b) * per);
          const t0 = performance.now();
          const logits = model.predictRaw(raw, b);
          seconds += (performance.now() - t0) / 1000;
          for (let i = 0; i < b; i++) {
            let best = 0;
            for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
            if (best === split.labels[start + i]) correct++;
          }
        }
        const result = {
          model: file,
          dataset,
          split: splitName,
          samples: n,
          accuracy: correct / n,
          samplesPerS: n / seconds,
          batchSize,
          kernel: native.addon.info().kernel,
        };
        if (flags.json) ctx.io.stdout.write(`${JSON.stringify(result)}\n`);
        else
          ctx.io.stdout.write(
            `${n} samples, accuracy ${(100 * result.accuracy).toFixed(2)}%, ` +
              `${Math.round(result.samplesPerS).toLocaleString('en-US')} samples/s (batch ${batchSize}, ${result.kernel} kernel)\n`,
          );
        return 0;
      }),
    );
}
