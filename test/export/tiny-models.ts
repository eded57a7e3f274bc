// Tiny random models shared by the export peer tests (llama.cpp, transformers.js): one builder, one variant list.
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.ts';
import { presetConfig } from '../../src/models/config.ts';
import { newModel, saveModelFolder } from '../../src/models/folder.ts';
import { tinyTokenizerFiles } from '../../src/tokenizer/tiny.ts';

/** A tiny random model whose biases and norm weights are non-zero too (so a dropped bias or norm shows). */
export function makeTinyModel(work: string, name: string, overrides: Record<string, unknown>): string {
  const dir = join(work, name);
  const config = presetConfig('tiny', { initializer_range: 0.2, ...overrides });
  const w = newModel(config, 11);
  const rng = new Rng(5);
  for (const [n, t] of w) {
    if (n.endsWith('.bias')) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * 0.3;
    if (n.endsWith('norm.weight')) for (let i = 0; i < t.data.length; i++) t.data[i] = 1 + rng.normal() * 0.2;
  }
  saveModelFolder(dir, { config, weights: w, tokenizerFiles: tinyTokenizerFiles() });
  return dir;
}

type Variant = [string, Record<string, unknown>];

export const QWEN2: Variant = [
  'qwen2 (qkv bias, untied head)',
  { model_type: 'qwen2', tie_word_embeddings: false, num_key_value_heads: 2 },
];
export const LLAMA3: Variant = [
  'llama-3 style (GQA, llama3 rope scaling, tied head)',
  {
    num_key_value_heads: 1,
    rope_theta: 500000,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    },
  },
];
export const LLAMA_ATTN_BIAS: Variant = [
  'llama with attention bias (permuted q/k bias)',
  { attention_bias: true, tie_word_embeddings: false },
];
export const QWEN3: Variant = [
  'qwen3 (q/k norm, head_dim != hidden/heads)',
  { model_type: 'qwen3', head_dim: 32, tie_word_embeddings: true },
];

/** log p over a [V] row of logits at `off` (float64), for comparing with a peer's probabilities. */
export function logSoftmax(x: Float32Array, off: number, V: number): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < V; i++) m = Math.max(m, x[off + i]!);
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp(x[off + i]! - m);
  const out = new Float64Array(V);
  for (let i = 0; i < V; i++) out[i] = x[off + i]! - m - Math.log(s);
  return out;
}
