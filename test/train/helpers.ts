import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TrainConfig, trainConfigSchema } from '../../src/config/train.ts';
import { createModelFolder } from '../../src/models/folder.ts';

/** A temp project: a tiny random model (the models helper's preset) and a small, learnable SFT dataset. */
export function tinyProject(opts: { preset?: string; rows?: number } = {}): { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'loom-train-'));
  mkdirSync(dir, { recursive: true });
  createModelFolder(join(dir, 'model'), { preset: opts.preset ?? 'tiny', seed: 1 });
  const rows: string[] = [];
  const n = opts.rows ?? 32;
  for (let i = 0; i < n; i++) {
    rows.push(
      JSON.stringify({
        messages: [
          { role: 'system', content: 'You are a helpful support agent.' },
          { role: 'user', content: `Where is my order ${i % 8}?` },
          { role: 'assistant', content: `Order ${i % 8} ships tomorrow.` },
        ],
      }),
    );
  }
  writeFileSync(join(dir, 'train.jsonl'), `${rows.join('\n')}\n`);
  writeFileSync(join(dir, 'eval.jsonl'), `${rows.slice(0, 6).join('\n')}\n`);
  const text = Array.from({ length: 24 }, (_, i) =>
    JSON.stringify({ text: `the cat sat on the mat number ${i % 4}. `.repeat(3) }),
  );
  writeFileSync(join(dir, 'corpus.jsonl'), `${text.join('\n')}\n`);
  return { dir };
}

export function cfg(over: Record<string, unknown>): TrainConfig {
  return trainConfigSchema.parse({
    model: 'model',
    dataset: 'train.jsonl',
    output_dir: 'out',
    per_device_train_batch_size: 4,
    cutoff_len: 64,
    lr_scheduler_type: 'constant',
    max_steps: 12,
    seed: 3,
    ...over,
  });
}
