/**
 * Near-dup quality of nearDedupStep on a labelled set built from real text (/work/shared/datasets):
 * originals are ~400-char zh documents (crosswoz user turns, songci poems) and ~800-char en documents (banking77,
 * clinc150, tinyshakespeare); each original gets one copy with token edits (zh: characters, en: words) at a known
 * rate r — insertions, deletions, substitutions (tokens drawn from the corpus) and adjacent swaps in equal parts.
 *
 * Gold (by construction): copies with r <= 3 % are duplicates (near-verbatim, shingle Jaccard around the 0.72 of
 * 14x8 LSH and above), copies with r >= 20 % and all unrelated documents are not; r in 5..15 % is a grey zone
 * (reported per rate, excluded from precision/recall). A second view uses the exact shingle-set Jaccard of each
 * pair (computed here with plain string sets) >= 0.7 as gold.
 *
 * Reports pair precision / recall / F1, recall per edit rate, and wall time per shingle setting.
 *   npx tsx bench/data/neardup.ts [--docs 1500] [--short]
 */

import type { DataRow } from '../../src/core/types.ts';
import { mulberry32 } from '../../src/data/dedup/hash.ts';
import { nearDedupStep } from '../../src/data/dedup/near.ts';
import { tokensOf } from '../../src/data/dedup/shingle.ts';
import { runStep } from '../../src/data/step-harness.ts';
import { banking77En, clinc150En, crosswozZh, documents, poetryZh, shakespeareEn } from './neardup-corpus.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const perLang = arg('docs', 1500);
const RATES = [0, 0.01, 0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5];
const DUP_MAX = 0.03;
const NONDUP_MIN = 0.2;

const rnd = mulberry32(2026);
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;

function shuffled<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

// --short: single utterances (customer-service sized: crosswoz user turns >= 15 chars, banking77/clinc150 queries
// >= 8 words) instead of ~400/800-char documents. Many of those are real paraphrases of each other, so FPs there
// are partly true duplicates the gold does not know about.
const short = process.argv.includes('--short');
const zhDocs = shuffled(
  short ? crosswozZh().filter((t) => t.length >= 15) : documents([...crosswozZh(), ...poetryZh()], 400),
).slice(0, perLang);
const enDocs = shuffled(
  short
    ? [...banking77En(), ...clinc150En()].filter((t) => t.split(' ').length >= 8)
    : documents([...banking77En(), ...clinc150En(), ...shakespeareEn()], 800),
).slice(0, perLang);
const zhVocab = [...new Set([...zhDocs.join('')].filter((c) => /\p{Script=Han}/u.test(c)))];
const enVocab = [
  ...new Set(
    enDocs
      .join(' ')
      .split(/\s+/)
      .filter((w) => /^[a-z]+$/i.test(w)),
  ),
];

/** Applies round(rate * tokens) edits; zh edits characters, en edits whitespace-separated words. */
function edit(text: string, zh: boolean, rate: number): string {
  const toks = zh ? [...text] : text.split(' ');
  const ops = Math.round(rate * toks.length);
  for (let k = 0; k < ops; k++) {
    const i = Math.floor(rnd() * toks.length);
    const op = k % 4;
    const tok = zh ? pick(zhVocab) : pick(enVocab);
    if (op === 0) toks.splice(i, 0, tok);
    else if (op === 1 && toks.length > 1) toks.splice(i, 1);
    else if (op === 2) toks[i] = tok;
    else if (i + 1 < toks.length) [toks[i], toks[i + 1]] = [toks[i + 1]!, toks[i]!];
  }
  return toks.join(zh ? '' : ' ');
}

interface Pair {
  a: string;
  b: string;
  rate: number;
  zh: boolean;
  jaccard: number;
}

function shingleSet(text: string, n: number): Set<string> {
  const t = tokensOf(text);
  const out = new Set<string>();
  if (t.length === 0) return out;
  const w = Math.min(n, t.length);
  for (let i = 0; i + w <= t.length; i++) out.add(t.slice(i, i + w).join('\u0001'));
  return out;
}

function jaccard(x: Set<string>, y: Set<string>): number {
  let inter = 0;
  for (const s of x) if (y.has(s)) inter++;
  return inter / (x.size + y.size - inter || 1);
}

const rows: DataRow[] = [];
const pairs: Pair[] = [];
let idn = 0;
for (const [docs, zh] of [
  [zhDocs, true],
  [enDocs, false],
] as const) {
  for (const d of docs) {
    const a = `d${idn++}`;
    rows.push({ id: a, text: d, meta: {}, source: { file: 'bench', line: idn } });
    const rate = pick(RATES);
    const b = `d${idn++}`;
    const copy = edit(d, zh, rate);
    rows.push({ id: b, text: copy, meta: {}, source: { file: 'bench', line: idn } });
    pairs.push({ a, b, rate, zh, jaccard: 0 });
  }
}
const order = shuffled(rows.map((_, i) => i));
const input = order.map((i) => rows[i]!);
const textOf = new Map(rows.map((r) => [r.id, r.text!]));
const key = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`);

for (const [words, chars, verify] of [
  [5, 5, false],
  [5, 3, false],
  [3, 3, false],
  [5, 8, false],
  [5, 5, true],
] as const) {
  for (const p of pairs) {
    p.jaccard = jaccard(
      shingleSet(textOf.get(p.a)!, p.zh ? chars! : words!),
      shingleSet(textOf.get(p.b)!, p.zh ? chars! : words!),
    );
  }
  const t0 = performance.now();
  const res = await runStep(
    nearDedupStep({ shingle_words: words, shingle_chars: chars, action: 'mark', verify, threshold: 0.7 }),
    input,
  );
  const seconds = (performance.now() - t0) / 1000;
  const clusters = new Map<string, string[]>();
  for (const r of res.kept) {
    const c = r.meta.dup_cluster as string | undefined;
    if (c) clusters.set(c, [...(clusters.get(c) ?? []), r.id]);
  }
  const predicted = new Set<string>();
  for (const members of clusters.values()) {
    for (let i = 0; i < members.length; i++)
      for (let j = i + 1; j < members.length; j++) predicted.add(key(members[i]!, members[j]!));
  }
  const score = (isDup: (p: Pair) => boolean | undefined) => {
    const grey = new Set<string>();
    const gold = new Set<string>();
    for (const p of pairs) {
      const d = isDup(p);
      if (d === undefined) grey.add(key(p.a, p.b));
      else if (d) gold.add(key(p.a, p.b));
    }
    let tp = 0;
    let fp = 0;
    for (const k of predicted) {
      if (gold.has(k)) tp++;
      else if (!grey.has(k)) fp++;
    }
    const precision = tp / (tp + fp || 1);
    const recall = tp / (gold.size || 1);
    const f1 = (2 * precision * recall) / (precision + recall || 1);
    return {
      gold_pairs: gold.size,
      tp,
      fp,
      precision: +precision.toFixed(4),
      recall: +recall.toFixed(4),
      f1: +f1.toFixed(4),
    };
  };
  const byConstruction = score((p) => (p.rate <= DUP_MAX ? true : p.rate >= NONDUP_MIN ? false : undefined));
  const byJaccard = score((p) => p.jaccard >= 0.7);
  const perRate: Record<string, { zh: string; en: string; mean_j_zh: number; mean_j_en: number }> = {};
  for (const r of RATES) {
    const f = (zh: boolean) => pairs.filter((p) => p.rate === r && p.zh === zh);
    const rec = (ps: Pair[]) => `${ps.filter((p) => predicted.has(key(p.a, p.b))).length}/${ps.length}`;
    const mj = (ps: Pair[]) => +(ps.reduce((a, p) => a + p.jaccard, 0) / (ps.length || 1)).toFixed(3);
    perRate[String(r)] = { zh: rec(f(true)), en: rec(f(false)), mean_j_zh: mj(f(true)), mean_j_en: mj(f(false)) };
  }
  console.log(
    JSON.stringify({
      bench: 'neardup',
      set: short ? 'short' : 'documents',
      shingle_words: words,
      shingle_chars: chars,
      verify_0_7: verify,
      perms: 112,
      bands: '14x8',
      docs: input.length,
      mb: +(input.reduce((a, r) => a + Buffer.byteLength(r.text!, 'utf8'), 0) / 1e6).toFixed(2),
      seconds: +seconds.toFixed(2),
      by_construction: byConstruction,
      by_exact_jaccard_0_7: byJaccard,
      predicted_pairs: predicted.size,
      recall_per_edit_rate: perRate,
    }),
  );
}
