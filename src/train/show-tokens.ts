import type { TokenizedExample } from './batching.ts';

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
  let out = '';
  for (const r of weightRuns(ex)) {
    const text = await decode(r.ids);
    if (r.weight <= 0) out += text;
    else if (ansi) out += `${r.weight === 1 ? '\x1b[42;30m' : '\x1b[43;30m'}${text}\x1b[0m`;
    else out += `[[${text}]]${r.weight !== 1 ? `^${r.weight}` : ''}`;
  }
  return out;
}

export function maskSummary(ex: TokenizedExample): string {
  const trained = ex.weights.filter((w) => w > 0).length;
  return `${ex.ids.length} tokens, ${trained} trained`;
}
