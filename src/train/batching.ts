import { LoomError } from '../core/errors.ts';
import { epochPermutation } from './rng.ts';

/**
 * Turning tokenized examples into fixed batches: cutoff_len truncation, batches by examples or by tokens,
 * and sequence packing. Everything here is a pure function of (examples, settings, seed, epoch), which is what makes
 * `--resume` able to rebuild the exact batch it stopped at from a (epoch, batch index) cursor.
 */

/** One training sequence. `weights[t]` is the loss weight of predicting `ids[t]` from the tokens before it. */
export interface TokenizedExample {
  ids: number[];
  weights: number[];
  /** Stage cls: the class id, the target of the last token (the pooled position); `weights` are unused. */
  label?: number;
}

export interface Batch {
  batch: number;
  seq: number;
  /** [B,T] int64 token ids (pad = 0). */
  inputIds: BigInt64Array;
  /** [B,T] int64 next-token targets (ids shifted left by one; last position 0 with weight 0). */
  targets: BigInt64Array;
  /** [B,T] float loss weight of each target. */
  weights: Float32Array;
  /** [B,T] int64 positions, restarting at 0 for each packed segment. */
  positionIds: BigInt64Array;
  /** [B,1,T,T] additive float mask: 0 where query t may attend to key s (causal, same segment), -1e9 elsewhere. */
  mask: Float32Array;
  /** Tokens that are not padding. */
  tokens: number;
  /** Sum of `weights`: the loss denominator contribution of this batch. */
  weightSum: number;
  /** Indices of the examples in this batch (for debugging and --show-tokens). */
  examples: number[];
}

export interface TruncateResult {
  kept: TokenizedExample[];
  /** Indices (into the input) of rows dropped because their prompt alone reaches cutoff_len. */
  dropped: number[];
  /** How many kept rows were cut. */
  truncated: number;
}

/**
 * cutoff_len policy: a row that fits is kept whole. A row whose untrained prefix (system + user turns before the
 * first trained token) already fills cutoff_len is dropped, because nothing of it would be learned. Otherwise the row
 * is cut at cutoff_len from the end, i.e. the tail of the last turns (usually the last assistant answer) is lost.
 */
export function truncateExamples(examples: readonly TokenizedExample[], cutoffLen: number): TruncateResult {
  const kept: TokenizedExample[] = [];
  const dropped: number[] = [];
  let truncated = 0;
  examples.forEach((ex, i) => {
    if (ex.ids.length <= cutoffLen) {
      kept.push(ex);
      return;
    }
    const firstTrained = ex.weights.findIndex((w) => w > 0);
    if (firstTrained < 0 || firstTrained >= cutoffLen) {
      dropped.push(i);
      return;
    }
    kept.push({ ids: ex.ids.slice(0, cutoffLen), weights: ex.weights.slice(0, cutoffLen) });
    truncated++;
  });
  return { kept, dropped, truncated };
}

/**
 * Pretraining documents → fixed rows of `cutoffLen` tokens: documents are joined with `eos` between them and the
 * stream is cut into rows; positions and attention restart at each document boundary (no cross-document attention).
 */
export function chunkDocuments(docs: readonly number[][], cutoffLen: number, eos: number | undefined): PackedRow[] {
  const rows: PackedRow[] = [];
  let cur: PackedRow = { ids: [], weights: [], segments: [], sources: [] };
  let seg = 0;
  docs.forEach((doc, di) => {
    const toks = eos === undefined ? doc : [...doc, eos];
    for (let i = 0; i < toks.length; i++) {
      if (cur.ids.length === cutoffLen) {
        rows.push(cur);
        cur = { ids: [], weights: [], segments: [], sources: [] };
      }
      if (cur.sources[cur.sources.length - 1] !== di) cur.sources.push(di);
      cur.ids.push(toks[i]!);
      // The first token of a segment has no context inside the segment, so it is not a target.
      const segStart = i === 0 || cur.ids.length === 1;
      cur.weights.push(segStart ? 0 : 1);
      cur.segments.push(i === 0 || cur.ids.length === 1 ? ++seg : seg);
    }
  });
  if (cur.ids.length > 0) rows.push(cur);
  return rows;
}

/** A row made of one or more examples; `segments[t]` numbers the example each token belongs to. */
export interface PackedRow {
  ids: number[];
  weights: number[];
  segments: number[];
  sources: number[];
  /** Stage cls: class id (one example per row). */
  label?: number;
}

function singleRow(ex: TokenizedExample, index: number): PackedRow {
  const row: PackedRow = { ids: ex.ids, weights: ex.weights, segments: ex.ids.map(() => 1), sources: [index] };
  if (ex.label !== undefined) row.label = ex.label;
  return row;
}

/** Greedy packing in the given order: each row is filled up to cutoffLen, examples are never split. */
export function packRows(
  examples: readonly TokenizedExample[],
  order: readonly number[],
  cutoffLen: number,
): PackedRow[] {
  const rows: PackedRow[] = [];
  let cur: PackedRow = { ids: [], weights: [], segments: [], sources: [] };
  let seg = 0;
  for (const i of order) {
    const ex = examples[i]!;
    if (ex.ids.length > cutoffLen) {
      throw new LoomError('INTERNAL', `example ${i} longer than cutoff_len reached packing`);
    }
    if (cur.ids.length + ex.ids.length > cutoffLen) {
      rows.push(cur);
      cur = { ids: [], weights: [], segments: [], sources: [] };
    }
    seg++;
    cur.ids.push(...ex.ids);
    cur.weights.push(...ex.weights);
    for (let k = 0; k < ex.ids.length; k++) cur.segments.push(seg);
    cur.sources.push(i);
  }
  if (cur.ids.length > 0) rows.push(cur);
  return rows;
}

export interface BatchingOptions {
  /** Rows per batch (ignored when batchTokens is set). */
  batchSize: number;
  /** If set, a batch holds as many rows as fit in batchTokens padded tokens (at least one). */
  batchTokens?: number;
  packing: boolean;
  cutoffLen: number;
  seed: number;
  /** Keep the given order instead of shuffling (evaluation). */
  shuffle: boolean;
}

/** The list of batches for one epoch, each a list of rows. Deterministic in (examples, options, epoch). */
export function epochRows(examples: readonly TokenizedExample[], o: BatchingOptions, epoch: number): PackedRow[][] {
  const order = o.shuffle ? epochPermutation(examples.length, o.seed, epoch) : examples.map((_, i) => i);
  const rows = o.packing ? packRows(examples, order, o.cutoffLen) : order.map((i) => singleRow(examples[i]!, i));
  return groupRows(rows, o);
}

export function groupRows(
  rows: readonly PackedRow[],
  o: Pick<BatchingOptions, 'batchSize' | 'batchTokens'>,
): PackedRow[][] {
  const batches: PackedRow[][] = [];
  let cur: PackedRow[] = [];
  let maxLen = 0;
  for (const r of rows) {
    const nextMax = Math.max(maxLen, r.ids.length);
    const full =
      o.batchTokens !== undefined
        ? cur.length > 0 && nextMax * (cur.length + 1) > o.batchTokens
        : cur.length === o.batchSize;
    if (full) {
      batches.push(cur);
      cur = [];
      maxLen = 0;
    }
    cur.push(r);
    maxLen = Math.max(maxLen, r.ids.length);
  }
  if (cur.length > 0) batches.push(cur);
  return batches;
}

export const MASKED = -1e9;

/** Pads rows to one length and builds the tensors the training graph takes. */
export function collate(rows: readonly PackedRow[], padTo?: number): Batch {
  const B = rows.length;
  const T = Math.max(padTo ?? 0, ...rows.map((r) => r.ids.length));
  const inputIds = new BigInt64Array(B * T);
  const targets = new BigInt64Array(B * T);
  const weights = new Float32Array(B * T);
  const positionIds = new BigInt64Array(B * T);
  const mask = new Float32Array(B * T * T).fill(MASKED);
  let tokens = 0;
  let weightSum = 0;
  const examples: number[] = [];
  rows.forEach((r, b) => {
    examples.push(...r.sources);
    const n = r.ids.length;
    tokens += n;
    let pos = 0;
    let segStart = 0;
    for (let t = 0; t < T; t++) {
      const o = b * T + t;
      if (t < n) {
        if (t > 0 && r.segments[t] !== r.segments[t - 1]) {
          pos = 0;
          segStart = t;
        }
        inputIds[o] = BigInt(r.ids[t]!);
        positionIds[o] = BigInt(pos++);
        if (r.label !== undefined) {
          // classification: one target, the class id at the last real token (the pooled position)
          if (t === n - 1) {
            targets[o] = BigInt(r.label);
            weights[o] = 1;
            weightSum += 1;
          }
        } else if (t + 1 < n && r.segments[t + 1] === r.segments[t]) {
          // target of position t is token t+1 if it is in the same segment
          targets[o] = BigInt(r.ids[t + 1]!);
          const w = r.weights[t + 1]!;
          weights[o] = w;
          weightSum += w;
        }
        const rowOff = (b * T + t) * T;
        for (let s = segStart; s <= t; s++) mask[rowOff + s] = 0;
      } else {
        // padding attends to itself only so its softmax row stays finite
        mask[(b * T + t) * T + t] = 0;
        positionIds[o] = BigInt(t);
      }
    }
  });
  return { batch: B, seq: T, inputIds, targets, weights, positionIds, mask, tokens, weightSum, examples };
}
