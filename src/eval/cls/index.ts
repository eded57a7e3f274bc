/**
 * `loom eval cls <model> <data.jsonl>`: a sequence-classification folder (written by `loom train` with stage: cls,
 * or any HF `LlamaForSequenceClassification`-style folder) scored on `{"text","label"}` JSONL: accuracy, precision /
 * recall / F1 per class, macro and weighted averages, confusion matrix (the eval stage's `classificationReport`).
 *
 * Inference: texts are tokenized as in training (special tokens on, first cutoff tokens), right-padded in batches
 * and run through the model graph; the logits of each row's last real token are its class scores (HF pools the last
 * non-pad token; causal attention means right padding never reaches it).
 */
import { resolve } from 'node:path';
import { LoomError } from '../../core/errors.ts';
import { Engine, type HostTensor, type Session, toOnnx } from '../../engine/index.ts';
import type { LlamaConfig } from '../../models/config.ts';
import { loadWeights, openModelFolder } from '../../models/folder.ts';
import { buildLlama } from '../../models/llama.ts';
import { LoomTokenizer } from '../../tokenizer/tokenizer.ts';
import { readRows } from '../../train/data.ts';
import { type ClassificationReport, classificationReport } from '../metrics/classify.ts';

export interface Classifier {
  readonly labels: readonly string[];
  readonly config: LlamaConfig;
  /** Class probabilities per text (softmax of the pooled logits), in label order. */
  classify(texts: readonly string[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

export interface ClassifierOptions {
  /** Tokens kept per text (default 256, at most max_position_embeddings). */
  cutoff?: number;
  batchSize?: number;
  threads?: number;
  engine?: Engine;
}

export async function loadClassifier(dir: string, opts: ClassifierOptions = {}): Promise<Classifier> {
  const folder = openModelFolder(dir);
  const config = folder.config;
  folder.close();
  const labels = config.labels;
  if (!labels) {
    throw new LoomError('MODEL_INVALID', `${dir} is not a sequence-classification model`, {
      file: dir,
      field: 'architectures',
      hint: 'train one with `loom train` and stage: cls (its <output_dir>/model folder), or pass a *ForSequenceClassification folder',
    });
  }
  const tok = LoomTokenizer.fromFolder(dir);
  const weights = loadWeights(dir);
  const m = buildLlama(config, weights, { attentionMask: 'none', positionIds: false, logits: 'all' });
  const engine = opts.engine ?? (await Engine.create({ threads: opts.threads }));
  const session: Session = await engine.load(toOnnx(m.graph), { transfer: true });
  const cutoff = Math.min(opts.cutoff ?? 256, config.maxPositionEmbeddings);
  const B = opts.batchSize ?? 16;
  const C = labels.length;
  return {
    labels,
    config,
    async classify(texts) {
      const out: Float32Array[] = [];
      for (let s = 0; s < texts.length; s += B) {
        const ids: number[][] = [];
        for (const t of texts.slice(s, s + B)) {
          const e = await tok.encode(t, { addSpecialTokens: true });
          ids.push((e.length > 0 ? e : [config.padTokenId ?? 0]).slice(0, cutoff));
        }
        const T = Math.max(...ids.map((r) => r.length));
        const data = new BigInt64Array(ids.length * T).fill(BigInt(config.padTokenId ?? 0));
        ids.forEach((r, b) => {
          r.forEach((v, t) => {
            data[b * T + t] = BigInt(v);
          });
        });
        const feeds: Record<string, HostTensor> = { input_ids: { dtype: 'int64', dims: [ids.length, T], data } };
        const logits = (await session.run(feeds, ['logits'])).logits!.data as Float32Array;
        ids.forEach((r, b) => {
          const at = (b * T + r.length - 1) * C;
          out.push(softmax(logits.subarray(at, at + C)));
        });
      }
      return out;
    },
    async close() {
      await session.release();
      if (!opts.engine) await engine.close();
    },
  };
}

export function softmax(z: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) max = Math.max(max, z[i]!);
  const out = new Float32Array(z.length);
  let sum = 0;
  for (let i = 0; i < z.length; i++) {
    out[i] = Math.exp(z[i]! - max);
    sum += out[i]!;
  }
  for (let i = 0; i < z.length; i++) out[i] = out[i]! / sum;
  return out;
}

export interface ClsEvalResult {
  model: string;
  data: string;
  report: ClassificationReport;
  /** Milliseconds per text (batched inference, tokenizing included). */
  msPerText: number;
  errors: { line: number; text: string; gold: string; pred: string; p: number }[];
}

export async function evalClassifier(
  modelDir: string,
  dataFile: string,
  opts: ClassifierOptions = {},
): Promise<ClsEvalResult> {
  const rows = readRows([dataFile], process.cwd(), 'cls').rows;
  const clf = await loadClassifier(modelDir, opts);
  try {
    const t0 = performance.now();
    const probs = await clf.classify(rows.map((r) => r.text!));
    const ms = (performance.now() - t0) / Math.max(1, rows.length);
    const pred = probs.map((p) => clf.labels[argmax(p)]!);
    const gold = rows.map((r) => r.label!);
    const report = classificationReport(gold, pred, clf.labels);
    const errors = rows
      .map((r, i) => ({
        line: r.line,
        text: r.text!,
        gold: gold[i]!,
        pred: pred[i]!,
        p: probs[i]![argmax(probs[i]!)]!,
      }))
      .filter((e) => e.gold !== e.pred);
    return { model: resolve(modelDir), data: resolve(dataFile), report, msPerText: ms, errors };
  } finally {
    await clf.close();
  }
}

export function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
  return best;
}
