import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TrainConfig } from '../config/train.ts';
import { writeFileAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import type { LlamaConfig } from '../models/config.ts';
import { createModelFolder, folderFingerprint, loadWeights, openModelFolder } from '../models/folder.ts';
import type { Float32Tensor } from '../models/safetensors.ts';
import { TINY_SPECIALS } from '../tokenizer/tiny.ts';
import { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import { trainByteLevelBpe } from '../tokenizer/train-bpe.ts';
import {
  chunkDocuments,
  epochRows,
  groupRows,
  type PackedRow,
  type TokenizedExample,
  truncateExamples,
} from './batching.ts';
import { type CheckpointData, latestCheckpoint, loadCheckpoint } from './checkpoint.ts';
import { classList, withClassHead } from './cls.ts';
import { encodeClsRows, encodeSftRows, encodeTextRows, readRows } from './data.ts';
import { QLORA_SCHEME } from './quant.ts';
import { epochPermutation } from './rng.ts';
import type { TrainJob } from './trainer.ts';

/**
 * Training stage 1, prepare: the job's checks that need no model, the base model and tokenizer (built from nothing
 * for pretraining with train_tokenizer), the tokenized train/eval rows, the resume checkpoint, and the batches of
 * each epoch (deterministic in seed and epoch).
 */
export interface Prepared {
  model: LlamaConfig;
  modelDir: string;
  weights: Map<string, Float32Tensor>;
  tok: LoomTokenizer;
  train: TokenizedExample[] | PackedRow[];
  evalRows: PackedRow[];
  isPacked: boolean;
  dropped: number;
  truncated: number;
  datasetHash: string;
  modelHash: string;
  /** Stage cls: the classes in id order, and whether score.weight was drawn fresh (not from the base). */
  cls?: { labels: string[]; freshHead: boolean };
}

/** Hash of the config fields that change the run (not where or how often it writes). */
export function configHash(c: TrainConfig): string {
  const { output_dir: _o, eval_steps: _e, save_steps: _s, logging_steps: _l, threads: _t, ...rest } = c;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

/** The job-level refusals, before any model is read. */
export function checkJob(job: TrainJob): void {
  const c = job.config;
  if (job.merge && c.finetuning_type === 'qlora') {
    throw new LoomError('TRAIN_INVALID', 'cannot merge a QLoRA adapter into the base model', {
      field: 'finetuning_type',
      hint: 'the adapter was trained against 4-bit weights; merging into the full-precision base changes its outputs. Use the adapter with the base, or train with finetuning_type: lora to merge',
    });
  }
  if (job.merge && c.finetuning_type !== 'lora') {
    throw new LoomError('TRAIN_INVALID', `--merge applies to lora adapters (finetuning_type is ${c.finetuning_type})`, {
      field: 'finetuning_type',
      hint:
        c.finetuning_type === 'full' || c.finetuning_type === 'freeze'
          ? 'full and freeze tuning already write a complete model folder'
          : undefined,
    });
  }
  if (c.finetuning_type === 'prefix' && c.packing) {
    throw new LoomError('TRAIN_INVALID', 'prefix tuning cannot be combined with packing', {
      field: 'packing',
      hint: 'set packing: false (prefix key/values are shared by every sequence in a row)',
    });
  }
}

export async function prepare(job: TrainJob): Promise<Prepared> {
  const c = job.config;
  const modelDir = resolve(job.baseDir, c.model);
  if ((c.stage === 'pt' || c.stage === 'cls') && c.train_tokenizer && !existsSync(join(modelDir, 'config.json'))) {
    buildFromNothing(c, job.baseDir, modelDir);
  }
  const folder = openModelFolder(modelDir);
  let model = folder.config;
  folder.close();
  if (c.cutoff_len > model.maxPositionEmbeddings) {
    throw new LoomError(
      'TRAIN_INVALID',
      `cutoff_len ${c.cutoff_len} exceeds the model's max_position_embeddings ${model.maxPositionEmbeddings}`,
      {
        field: 'cutoff_len',
      },
    );
  }
  let weights = loadWeights(modelDir);
  if (!existsSync(join(modelDir, 'tokenizer.json'))) {
    throw new LoomError('MODEL_INVALID', `no tokenizer.json in ${modelDir}`, { file: modelDir });
  }
  const tok = LoomTokenizer.fromFolder(modelDir);
  const rows = readRows(c.dataset, job.baseDir, c.stage);
  let evalRowsRaw = c.eval_dataset ? readRows(c.eval_dataset, job.baseDir, c.stage).rows : [];
  let trainRows = rows.rows;
  if (c.max_samples) trainRows = trainRows.slice(0, c.max_samples);
  if (!c.eval_dataset && c.val_size > 0) {
    const perm = epochPermutation(trainRows.length, c.seed, -1);
    const nVal = Math.max(1, Math.round(trainRows.length * c.val_size));
    const valSet = new Set(perm.slice(0, nVal));
    evalRowsRaw = trainRows.filter((_, i) => valSet.has(i));
    trainRows = trainRows.filter((_, i) => !valSet.has(i));
  }
  let train: TokenizedExample[] | PackedRow[];
  let evalRows: PackedRow[];
  let dropped = 0;
  let truncated = 0;
  let isPacked = false;
  let cls: Prepared['cls'];
  if (c.stage === 'cls') {
    const labels = classList(c.labels, trainRows);
    const head = withClassHead(model, weights, labels, c.seed);
    model = head.model;
    weights = head.weights;
    cls = { labels, freshHead: head.freshHead };
    const enc = await encodeClsRows(tok, trainRows, labels, c.cutoff_len);
    train = enc.examples;
    truncated = enc.truncated;
    evalRows = (await encodeClsRows(tok, evalRowsRaw, labels, c.cutoff_len)).examples.map((e, i) => ({
      ids: e.ids,
      weights: e.weights,
      segments: e.ids.map(() => 1),
      sources: [i],
      label: e.label,
    }));
  } else if (c.stage === 'pt') {
    const eos = tok.eos?.id;
    train = chunkDocuments(await encodeTextRows(tok, trainRows), c.cutoff_len, eos);
    evalRows = chunkDocuments(await encodeTextRows(tok, evalRowsRaw), c.cutoff_len, eos);
    isPacked = true;
  } else {
    const enc = await encodeSftRows(tok, trainRows, { template: c.template, trainOnPrompt: c.train_on_prompt });
    const t = truncateExamples(enc, c.cutoff_len);
    dropped = t.dropped.length;
    truncated = t.truncated;
    train = t.kept;
    const encEval = truncateExamples(
      await encodeSftRows(tok, evalRowsRaw, { template: c.template, trainOnPrompt: c.train_on_prompt }),
      c.cutoff_len,
    ).kept;
    evalRows = encEval.map((e, i) => ({ ids: e.ids, weights: e.weights, segments: e.ids.map(() => 1), sources: [i] }));
  }
  if (train.length === 0) {
    throw new LoomError('TRAIN_INVALID', 'no training examples left after cutoff_len', {
      field: 'cutoff_len',
      hint: `${dropped} rows were dropped because their prompt alone reaches cutoff_len; raise cutoff_len`,
    });
  }
  return {
    model,
    modelDir,
    weights,
    tok,
    train,
    evalRows,
    isPacked,
    dropped,
    truncated,
    datasetHash: rows.hash,
    modelHash: folderFingerprint(modelDir),
    ...(cls ? { cls } : {}),
  };
}

/**
 * Pretraining from nothing: train a byte-level BPE tokenizer on the corpus (the tokenizer stage's trainer; the
 * `tokenizers` npm binding exposes `train(files)` but no vocabulary size or special tokens), then create a
 * random-init model of `model_preset` whose vocabulary is that tokenizer's.
 */
function buildFromNothing(c: TrainConfig, baseDir: string, modelDir: string): void {
  const rows = readRows(c.dataset, baseDir, c.stage === 'cls' ? 'cls' : 'pt').rows;
  const json = trainByteLevelBpe(
    rows.map((r) => r.text!),
    { vocabSize: c.tokenizer_vocab_size, specialTokens: TINY_SPECIALS, minFrequency: 2 },
  );
  const vocab = Object.keys((json.model as { vocab: Record<string, number> }).vocab).length;
  createModelFolder(modelDir, { preset: c.model_preset, seed: c.seed, overrides: { vocab_size: vocab } });
  writeFileAtomic(join(modelDir, 'tokenizer.json'), JSON.stringify(json));
}

/**
 * `--resume`: the newest checkpoint in the run folder, verified against its manifest (CHECKPOINT_CORRUPT names a
 * damaged file), refused when it was made with a different config.
 */
export function loadResume(outputDir: string, c: TrainConfig, warn?: (line: string) => void): CheckpointData {
  const dir = latestCheckpoint(outputDir);
  if (!dir) {
    throw new LoomError('CHECKPOINT', `--resume: no checkpoint in ${join(outputDir, 'checkpoints')}`, {
      hint: 'run without --resume to start fresh',
    });
  }
  const from = loadCheckpoint(dir, warn);
  if (c.finetuning_type === 'qlora' && from.state.quant !== QLORA_SCHEME) {
    // The adapter was trained against a differently quantised base: resuming would continue on other weights.
    throw new LoomError(
      'CHECKPOINT',
      `this QLoRA checkpoint was trained on a 4-bit base quantised as ${from.state.quant ?? 'per-row blocks (an earlier Loom)'}; this Loom quantises it as ${QLORA_SCHEME} (one scale per 32-row tile, computed with MatMulNBits), so the run cannot continue bit-identically`,
      {
        file: join(dir, 'state.json'),
        hint: 'train again without --resume (the finished adapter of the old run stays usable with loom generate/chat/export), or finish the run with the Loom version that started it',
      },
    );
  }
  if (from.state.configHash !== configHash(c)) {
    throw new LoomError('CHECKPOINT', 'the checkpoint was made with a different config', {
      file: dir,
      hint: 'resume with the same config (only output_dir, eval_steps, save_steps, logging_steps and threads may change)',
    });
  }
  return from;
}

/** Batches of one epoch (rows already packed for pt; sft rows packed here when packing is on). */
export function epochBatches(p: Prepared, c: TrainConfig, epoch: number): PackedRow[][] {
  if (p.isPacked) {
    const rows = p.train as PackedRow[];
    const perm = epochPermutation(rows.length, c.seed, epoch);
    return groupRows(
      perm.map((i) => rows[i]!),
      { batchSize: c.per_device_train_batch_size, batchTokens: c.batch_tokens },
    );
  }
  return epochRows(
    p.train as TokenizedExample[],
    {
      batchSize: c.per_device_train_batch_size,
      batchTokens: c.batch_tokens,
      packing: c.packing,
      cutoffLen: c.cutoff_len,
      seed: c.seed,
      shuffle: true,
    },
    epoch,
  );
}

export function evalBatches(p: Prepared, c: TrainConfig): PackedRow[][] {
  return groupRows(p.evalRows, { batchSize: c.per_device_train_batch_size, batchTokens: c.batch_tokens });
}
