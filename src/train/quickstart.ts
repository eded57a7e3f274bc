import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { trainConfigSchema } from '../config/train.ts';
import { createModelFolder } from '../models/folder.ts';
import { runTraining } from './trainer.ts';

/**
 * Quickstart `train` stage: LoRA SFT of a tiny random-init model on the customer-service data produced by the data
 * stage (assistant-only loss), about half a minute on 2 cores; prints validation loss before and after.
 */
function findData(outDir: string): string | undefined {
  const candidates = [
    join(outDir, 'data'),
    join(outDir, 'customer-service', 'data'),
    resolve('out/customer-service/data'),
    resolve('examples/customer-service/out'),
  ];
  return candidates.find((d) => existsSync(join(d, 'train.jsonl')) && existsSync(join(d, 'validation.jsonl')));
}

export async function trainStage(outDir: string): Promise<{ stage: string; summary: string; outputs: string[] }> {
  const data = findData(outDir);
  if (!data) {
    return {
      stage: 'train',
      summary:
        'skipped: no train.jsonl/validation.jsonl from the data stage (run `loom data run examples/customer-service/data.yaml`)',
      outputs: [],
    };
  }
  const dir = resolve(outDir, 'train');
  const base = join(dir, 'base');
  if (!existsSync(join(base, 'config.json'))) createModelFolder(base, { preset: 'tiny', seed: 1 });
  const config = trainConfigSchema.parse({
    model: base,
    dataset: join(data, 'train.jsonl'),
    eval_dataset: join(data, 'validation.jsonl'),
    output_dir: join(dir, 'lora'),
    finetuning_type: 'lora',
    lora_rank: 16,
    lora_alpha: 32,
    cutoff_len: 384,
    per_device_train_batch_size: 4,
    learning_rate: 1e-2,
    lr_scheduler_type: 'cosine',
    warmup_steps: 3,
    max_steps: 200,
    eval_steps: 200,
    seed: 42,
  });
  const r = await runTraining({ config, baseDir: dir, quiet: true, merge: true });
  const summary = [
    `LoRA SFT (rank 16, all-linear) of a tiny model on ${r.preflight.trainExamples} chats, ${r.steps} steps`,
    `trainable ${r.preflight.trainableParams.toLocaleString('en-US')} of ${r.preflight.totalParams.toLocaleString('en-US')} parameters`,
    `validation loss ${r.initialEvalLoss?.toFixed(4)} → ${r.bestEvalLoss?.toFixed(4)} (train loss ${r.firstLoss?.toFixed(4)} → ${r.lastLoss?.toFixed(4)})`,
  ].join('\n');
  return {
    stage: 'train',
    summary,
    outputs: r.outputs.filter((o) => !/\.json$|tokenizer|config/.test(o) || o.endsWith('lineage.json')),
  };
}
