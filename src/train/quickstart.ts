import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.ts';
import { trainConfigSchema } from '../config/train.ts';
import { writeFileAtomic } from '../core/atomic.ts';
import { readJsonlSync } from '../core/jsonl.ts';
import type { Message } from '../core/types.ts';
import { formatOverfit } from './metrics.ts';
import { formatTiming } from './preflight.ts';
import { runTraining, type TrainResult } from './trainer.ts';

/**
 * Quickstart `train` stage, the lifecycle a user runs by hand with the example's YAMLs:
 *   1. pretrain (stage pt, full) a small model from nothing on domain text: the shipped FAQ corpus plus the data
 *      stage's train split rendered as text (never its test split); `train-pretrain.yaml` trains a byte-level BPE
 *      tokenizer on that corpus first (zh + en) and creates the random model;
 *   2. LoRA SFT of the pretrained model on the train split's chats (`train-lora.yaml`, assistant-only loss).
 * The pretrained model is the honest base for the LoRA: the eval stage compares the two.
 */
const EXAMPLE = fileURLToPath(new URL('../../examples/customer-service/', import.meta.url));

export interface TrainStageOptions {
  /** key=value overrides for train-pretrain.yaml / train-lora.yaml (tests shorten the runs). */
  pretrain?: string[];
  lora?: string[];
  threads?: number;
}

export interface TrainStageResult {
  stage: string;
  summary: string;
  outputs: string[];
  pretrain?: TrainResult;
  lora?: TrainResult;
  /** Validation loss at the end of each run (the last evaluation, not the best). */
  finalEvalLoss?: { pretrain?: number; lora?: number };
}

function findData(outDir: string): string | undefined {
  const d = resolve(outDir, 'data');
  return existsSync(join(d, 'train.jsonl')) && existsSync(join(d, 'validation.jsonl')) ? d : undefined;
}

const CJK = /[\u3400-\u9fff]/;

/**
 * A chat as a plain-text document in the shipped corpus's shape ("Customer: …\nAgent: …"; 顾客/客服 for Chinese
 * chats). The system prompt is left out: it is the same in every row and says nothing about the shop's answers.
 */
function chatToText(messages: readonly Message[]): string {
  const zh = messages.some((m) => m.role !== 'system' && CJK.test(m.content));
  const label = (role: string): string =>
    role === 'user' ? (zh ? '顾客：' : 'Customer: ') : role === 'assistant' ? (zh ? '客服：' : 'Agent: ') : `${role}: `;
  return messages
    .filter((m) => m.role !== 'system')
    .map((m) => `${label(m.role)}${m.content}`)
    .join('\n');
}

/** messages JSONL → `{"text"}` JSONL for pretraining; returns the row count. */
export function chatsToTextFile(input: string, output: string): number {
  const rows = readJsonlSync<{ messages: Message[] }>(input).map((r) => ({ text: chatToText(r.messages) }));
  writeFileAtomic(output, rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
  return rows.length;
}

/** The last evaluation's loss in a run's metrics.jsonl (the artefacts are the final weights, not the best). */
function lastEvalLoss(runDir: string): number | undefined {
  const f = join(runDir, 'metrics.jsonl');
  if (!existsSync(f)) return undefined;
  let last: number | undefined;
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    if (!line.includes('"eval_loss"')) continue;
    last = (JSON.parse(line) as { eval_loss: number }).eval_loss;
  }
  return last;
}

const f4 = (x: number | undefined): string => (x === undefined ? '–' : x.toFixed(3));
const n = (x: number): string => x.toLocaleString('en-US');

export async function trainStage(outDir: string, opts: TrainStageOptions = {}): Promise<TrainStageResult> {
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
  // Pretraining text: the shipped FAQ corpus + the train split as text; the validation split as text is held out.
  const trainText = join(dir, 'corpus', 'train-text.jsonl');
  const valText = join(dir, 'corpus', 'validation-text.jsonl');
  const nTrainText = chatsToTextFile(join(data, 'train.jsonl'), trainText);
  const nValText = chatsToTextFile(join(data, 'validation.jsonl'), valText);

  const base = join(dir, 'base');
  const pretrainDir = join(dir, 'pretrain');
  const pt = loadConfig(resolve(EXAMPLE, 'train-pretrain.yaml'), trainConfigSchema, [
    `model=${JSON.stringify(base)}`,
    `dataset=${JSON.stringify([resolve(EXAMPLE, 'train-corpus.jsonl'), trainText])}`,
    `eval_dataset=${JSON.stringify([valText])}`,
    `output_dir=${JSON.stringify(pretrainDir)}`,
    ...(opts.pretrain ?? []),
  ]);
  const fresh = !existsSync(join(base, 'config.json'));
  let t0 = performance.now();
  const rPt = await runTraining({ config: pt.config, baseDir: pt.baseDir, quiet: true, threads: opts.threads });
  const ptSeconds = (performance.now() - t0) / 1000;

  const lora = loadConfig(resolve(EXAMPLE, 'train-lora.yaml'), trainConfigSchema, [
    `model=${JSON.stringify(join(pretrainDir, 'model'))}`,
    `dataset=${JSON.stringify([join(data, 'train.jsonl')])}`,
    `eval_dataset=${JSON.stringify([join(data, 'validation.jsonl')])}`,
    `output_dir=${JSON.stringify(join(dir, 'lora'))}`,
    ...(opts.lora ?? []),
  ]);
  t0 = performance.now();
  const rLora = await runTraining({
    config: lora.config,
    baseDir: lora.baseDir,
    quiet: true,
    merge: true,
    threads: opts.threads,
  });
  const loraSeconds = (performance.now() - t0) / 1000;

  const finalEvalLoss = { pretrain: lastEvalLoss(pretrainDir), lora: lastEvalLoss(join(dir, 'lora')) };
  const pc = pt.config;
  const lc = lora.config;
  const summary = [
    `corpus: ${nTrainText} train chats as text + the shipped FAQ corpus (validation: ${nValText} chats as text)`,
    fresh && pc.train_tokenizer
      ? `model: random ${pc.model_preset} model with a ${n(pc.tokenizer_vocab_size)}-token byte-level BPE trained on the corpus (${base})`
      : `model: ${base}`,
    `pretrain (stage pt, full, ${n(rPt.preflight.totalParams)} parameters): ${rPt.steps} steps in ${ptSeconds.toFixed(1)} s, ` +
      `validation loss ${f4(rPt.initialEvalLoss)} → ${f4(finalEvalLoss.pretrain)} (train ${f4(rPt.firstLoss)} → ${f4(rPt.lastLoss)})`,
    `LoRA SFT (rank ${lc.lora_rank}, ${lc.lora_target === 'all-linear' ? 'all-linear' : lc.lora_target.join(',')}, ${n(rLora.preflight.trainableParams)} trainable) on ` +
      `${rLora.preflight.trainExamples} chats: ${rLora.steps} steps in ${loraSeconds.toFixed(1)} s, validation loss on assistant turns ` +
      `${f4(rLora.initialEvalLoss)} → ${f4(finalEvalLoss.lora)} (train ${f4(rLora.firstLoss)} → ${f4(rLora.lastLoss)})`,
    ...[rPt, rLora].flatMap((r, i) => (r.timing ? [`${i ? 'LoRA SFT' : 'pretrain'} ${formatTiming(r.timing)}`] : [])),
    ...[rPt, rLora].flatMap((r, i) =>
      r.overfitting ? [`${i ? 'LoRA SFT' : 'pretrain'} ${formatOverfit(r.overfitting)}`] : [],
    ),
  ].join('\n');
  const keep = (o: string): boolean => !/\.json$|tokenizer|config|checkpoints/.test(o) || o.endsWith('lineage.json');
  return {
    stage: 'train',
    summary,
    outputs: [...rPt.outputs.filter(keep), ...rLora.outputs.filter(keep)],
    pretrain: rPt,
    lora: rLora,
    finalEvalLoss,
  };
}
