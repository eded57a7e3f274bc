import { resolve } from 'node:path';
import type { TrainConfig } from '../config/train.ts';
import { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import { type TokenizedExample, truncateExamples } from './batching.ts';
import { encodeSftRows, readRows } from './data.ts';

/**
 * `loom train --show-tokens N`: training examples as text with the trained tokens highlighted, so a user can see
 * exactly what the loss mask covers before spending compute. Runs of tokens with the same weight are decoded
 * together (byte-level tokens of one character stay together). On a TTY trained text is green-backed (yellow when
 * the weight is not 1); otherwise trained spans are wrapped in [[ ]] with ^w when the weight is not 1.
 */
export interface Run {
  ids: number[];
  weight: number;
}

export function weightRuns(ex: TokenizedExample): Run[] {
  const runs: Run[] = [];
  ex.ids.forEach((id, i) => {
    const w = ex.weights[i] ?? 0;
    const last = runs[runs.length - 1];
    if (last && last.weight === w) last.ids.push(id);
    else runs.push({ ids: [id], weight: w });
  });
  return runs;
}

export async function renderMasked(
  ex: TokenizedExample,
  decode: (ids: number[]) => Promise<string>,
  ansi: boolean,
): Promise<string> {
  const spans: MaskedSpan[] = [];
  for (const r of weightRuns(ex)) spans.push({ text: await decode(r.ids), weight: r.weight });
  return renderSpans(spans, ansi);
}

export interface MaskedSpan {
  text: string;
  /** Loss weight of these tokens: 0 = not trained (prompt, template), 1 = trained, other = loss_weight. */
  weight: number;
}

export interface MaskedExample {
  file: string;
  line: number;
  /** Token count and trained-token count (pretraining rows: every token is trained). */
  tokens: number;
  trained: number;
  /** Classification rows: the class the head is trained to predict. */
  label?: string;
  /** Set when the row is longer than cutoff_len: kept cut at the end, or dropped (its prompt alone fills it). */
  overCutoff?: 'cut' | 'dropped';
  spans: MaskedSpan[];
}

/**
 * The one public entry point behind `loom train --show-tokens` and the Studio's token view: the first `n` rows of
 * a train config's dataset (or of `dataset`, paths relative to `baseDir`) tokenized exactly as training sees them,
 * as decoded spans of equal loss weight.
 */
export async function maskedExamples(
  c: TrainConfig,
  baseDir: string,
  n: number,
  dataset: readonly string[] = c.dataset,
): Promise<MaskedExample[]> {
  const tok = LoomTokenizer.fromFolder(resolve(baseDir, c.model));
  const rows = readRows(dataset, baseDir, c.stage).rows.slice(0, Math.max(0, n));
  if (c.stage === 'pt' || c.stage === 'cls') {
    // Pretraining trains on every token; classification on the label through its head, not on the text's tokens.
    const out: MaskedExample[] = [];
    for (const r of rows) {
      const tokens = (await tok.encode(r.text ?? '')).length;
      const trained = c.stage === 'pt' ? tokens : 0;
      const label = r.label !== undefined ? { label: r.label } : {};
      out.push({
        file: r.file,
        line: r.line,
        tokens,
        trained,
        ...label,
        spans: [{ text: r.text ?? '', weight: trained ? 1 : 0 }],
      });
    }
    return out;
  }
  const enc = await encodeSftRows(tok, rows, { template: c.template, trainOnPrompt: c.train_on_prompt });
  const dropped = new Set(truncateExamples(enc, c.cutoff_len).dropped);
  const out: MaskedExample[] = [];
  for (let i = 0; i < enc.length; i++) {
    const ex = enc[i]!;
    const spans: MaskedSpan[] = [];
    for (const r of weightRuns(ex)) spans.push({ text: await tok.decode(r.ids), weight: r.weight });
    out.push({
      file: rows[i]!.file,
      line: rows[i]!.line,
      tokens: ex.ids.length,
      trained: ex.weights.filter((w) => w > 0).length,
      ...(ex.ids.length > c.cutoff_len ? { overCutoff: dropped.has(i) ? ('dropped' as const) : ('cut' as const) } : {}),
      spans,
    });
  }
  return out;
}

/** A masked example as terminal text: green (yellow for weights other than 1) on a TTY, [[ ]] and ^w otherwise. */
export function renderSpans(spans: readonly MaskedSpan[], ansi: boolean): string {
  let out = '';
  for (const s of spans) {
    if (s.weight <= 0) out += s.text;
    else if (ansi) out += `${s.weight === 1 ? '\x1b[42;30m' : '\x1b[43;30m'}${s.text}\x1b[0m`;
    else out += `[[${s.text}]]${s.weight !== 1 ? `^${s.weight}` : ''}`;
  }
  return out;
}
