/**
 * `loom guard train-classifier`: trains the guard's classifier layer with Loom itself. Steps: a byte-level BPE
 * tokenizer trained on the texts, a random-init two-layer Llama (64 wide) with a classification head, `loom train`
 * stage cls (full fine-tuning from scratch) on data/guard/cls-train.jsonl (built by tools/guard/build-cls-data.ts;
 * data card data/guard/CARD.md), then the model folder is copied to `out` (default data/guard/classifier, about
 * 1 MB, which the guard loads with `classifier: { enabled: true }`).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainConfigSchema } from '../config/train.ts';
import { writeFileAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { createModelFolder } from '../models/folder.ts';
import { TINY_SPECIALS } from '../tokenizer/tiny.ts';
import { trainByteLevelBpe } from '../tokenizer/train-bpe.ts';
import { runTraining } from '../train/trainer.ts';
import { normalizeForGuard } from './normalize.ts';

export const CLASSIFIER_LABELS = ['benign', 'injection', 'jailbreak', 'harmful'] as const;

/** The classifier's shape: small enough for a synchronous JS forward pass of a few milliseconds. */
export const CLASSIFIER_SHAPE = {
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 128,
  tie_word_embeddings: true,
} as const;

export interface TrainClassifierOptions {
  data: string;
  out: string;
  vocabSize?: number;
  epochs?: number;
  seed?: number;
  threads?: number;
  log?: (line: string) => void;
}

export async function trainGuardClassifier(o: TrainClassifierOptions): Promise<{ out: string; files: string[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  let rows: { text: string; label: string }[];
  try {
    rows = readFileSync(o.data, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { text: string; label: string })
      // The layer classifies the guard's normalised view (lower-cased, de-obfuscated), so it is trained on it.
      .map((r) => ({ text: normalizeForGuard(String(r.text)).text, label: String(r.label) }));
  } catch (e) {
    throw new LoomError('INPUT_NOT_FOUND', `cannot read ${o.data}: ${(e as Error).message}`, {
      file: o.data,
      hint: 'build it with `npx tsx tools/guard/build-cls-data.ts` or pass --data',
    });
  }
  const work = mkdtempSync(join(tmpdir(), 'loom-guard-cls-'));
  try {
    const texts = rows.map((r) => r.text);
    const data = join(work, 'train.jsonl');
    writeFileAtomic(data, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const base = join(work, 'base');
    const tok = trainByteLevelBpe(texts, { vocabSize: o.vocabSize ?? 2000, specialTokens: TINY_SPECIALS });
    const vocab = Object.keys((tok.model as { vocab: Record<string, number> }).vocab).length;
    createModelFolder(base, {
      preset: 'tiny',
      seed: o.seed ?? 14,
      overrides: { ...CLASSIFIER_SHAPE, vocab_size: vocab },
    });
    writeFileAtomic(join(base, 'tokenizer.json'), JSON.stringify(tok));
    log(`guard classifier: tokenizer ${vocab} tokens, ${texts.length} rows`);
    const config = trainConfigSchema.parse({
      model: base,
      dataset: data,
      output_dir: join(work, 'run'),
      stage: 'cls',
      finetuning_type: 'full',
      labels: [...CLASSIFIER_LABELS],
      cutoff_len: 64,
      per_device_train_batch_size: 32,
      learning_rate: 2e-3,
      lr_scheduler_type: 'cosine',
      warmup_ratio: 0.05,
      weight_decay: 0.01,
      num_train_epochs: o.epochs ?? 4,
      logging_steps: 50,
      seed: o.seed ?? 14,
    });
    const r = await runTraining({ config, baseDir: work, quiet: true, threads: o.threads, log });
    log(`guard classifier: ${r.steps} steps, loss ${r.firstLoss?.toFixed(3)} → ${r.lastLoss?.toFixed(3)}`);
    mkdirSync(o.out, { recursive: true });
    const files: string[] = [];
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
      copyFileSync(join(work, 'run', 'model', f), join(o.out, f));
      files.push(join(o.out, f));
    }
    return { out: o.out, files };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
