import { LoomError } from '../core/errors.ts';
import type { LlamaConfig } from '../models/config.ts';
import type { Float32Tensor } from '../models/safetensors.ts';
import type { LoadedRows } from './data.ts';
import { Rng } from './rng.ts';

/**
 * Stage cls: the class list and the model with a classification head. The head is HF's
 * `LlamaForSequenceClassification` score layer (`score.weight` [classes, hidden], no bias) on the last real token;
 * the graph side is in models/llama.ts (a config with `labels` gets that head), the export side is the model folder
 * written by artefacts.ts (config.json with id2label/label2id).
 */

/** Classes in id order: the config's `labels`, else the training rows' labels sorted (stable across runs). */
export function classList(configured: readonly string[] | undefined, rows: LoadedRows['rows']): string[] {
  if (configured && configured.length > 0) return [...configured];
  const seen = [...new Set(rows.map((r) => r.label!))].sort();
  if (seen.length < 2) {
    throw new LoomError(
      'TRAIN_INVALID',
      `stage cls needs at least two classes, the training rows have ${seen.length}`,
      {
        field: 'dataset',
        hint: 'check the "label" field of the rows, or list the classes under labels:',
      },
    );
  }
  return seen;
}

/**
 * The base model turned into a classifier: lm_head dropped (HF's classification class has none), `score.weight`
 * kept when the base already classifies the same classes in the same order (continuing a cls run), else freshly
 * drawn like HF's `_init_weights` (normal(0, initializer_range)).
 */
export function withClassHead(
  model: LlamaConfig,
  weights: Map<string, Float32Tensor>,
  labels: readonly string[],
  seed: number,
): { model: LlamaConfig; weights: Map<string, Float32Tensor>; freshHead: boolean } {
  const out = new Map(weights);
  out.delete('lm_head.weight');
  const same = model.labels?.length === labels.length && model.labels.every((l, i) => l === labels[i]);
  const H = model.hiddenSize;
  const old = out.get('score.weight');
  const keep = same && old !== undefined && old.dims[0] === labels.length && old.dims[1] === H;
  if (!keep) {
    const rng = new Rng((seed ^ 0x5c0e5c0e) >>> 0);
    const data = new Float32Array(labels.length * H);
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * model.initializerRange;
    out.set('score.weight', { dtype: 'float32', dims: [labels.length, H], data });
  }
  return { model: { ...model, labels: [...labels] }, weights: out, freshHead: !keep };
}
