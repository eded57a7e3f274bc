/**
 * ROUGE-N / ROUGE-L / ROUGE-Lsum as Google's rouge-score 0.1.2 computes them (rouge_scorer.py): n-gram overlap
 * with counts, LCS over tokens, summary-level union LCS over newline-separated sentences with the 1.5.5
 * double-count guard, and score_multi's per-type best target (first on ties).
 */
import { LoomError } from '../../core/errors.ts';
import { getRougeTokenizer, type RougeTokenizer, type RougeTokenizerName } from './rouge-tokenizers.ts';

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export interface RougeOptions {
  useStemmer?: boolean;
  /** A named tokenizer or any object with tokenize(). */
  tokenizer?: RougeTokenizerName | RougeTokenizer;
  /**
   * rougeLsum sentence splitting. false (rouge-score default): sentences are the non-empty lines. true: also split
   * after . ! ? (followed by space and a capital/digit) and after 。！？ — a small rule-based stand-in for NLTK punkt.
   */
  splitSummaries?: boolean;
  /** Refuse a target or prediction longer than this many UTF-16 units before tokenising (default MAX_ROUGE_SEGMENT_CHARS). */
  maxSegmentChars?: number;
  /** Refuse ROUGE-L / ROUGE-Lsum when target tokens × prediction tokens exceed this (default MAX_LCS_CELLS). */
  maxLcsCells?: number;
}

/**
 * ROUGE-L is an LCS, quadratic in the token counts, and rouge-score's ROUGE-Lsum keeps the whole table; a segment
 * that is really a whole document on one line (a 50 MB line) would run for hours. These caps make such input a
 * clear refusal in well under a second instead. They are refusals, not chunking: a chunked LCS is a different
 * number from rouge-score's, and a silently different score is worse than none.
 * 25 M cells is 5,000 × 5,000 tokens (a 100 MB table for ROUGE-Lsum at worst, about 0.1–0.3 s); 1 M characters
 * tokenise in about 0.3 s.
 */
const MAX_LCS_CELLS = 25_000_000;
const MAX_ROUGE_SEGMENT_CHARS = 1_000_000;

const ZERO: RougeScore = { precision: 0, recall: 0, fmeasure: 0 };

function rougeFmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0.0;
}

function validateRougeType(t: string): void {
  if (t === 'rougeL' || t === 'rougeLsum') return;
  const m = /^rouge([0-9])$/.exec(t);
  if (!m) {
    throw new LoomError('METRIC_OPTION', `invalid ROUGE type '${t}'`, {
      field: 'rouge_types',
      hint: 'use rouge1 … rouge9, rougeL or rougeLsum',
    });
  }
  if (Number(m[1]) <= 0)
    throw new LoomError('METRIC_OPTION', `rougeN needs a positive n: '${t}'`, { field: 'rouge_types' });
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  if (n === 1) {
    for (const t of tokens) m.set(t, (m.get(t) ?? 0) + 1);
    return m;
  }
  for (let i = 0; i + n <= tokens.length; i++) {
    // \u0000 cannot occur inside a token of any tokenizer here, so the key is unambiguous.
    const k = tokens.slice(i, i + n).join('\u0000');
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

function scoreNgrams(target: readonly string[], prediction: readonly string[], n: number): RougeScore {
  const t = ngramCounts(target, n);
  const p = ngramCounts(prediction, n);
  let inter = 0;
  for (const [k, c] of t) {
    const pc = p.get(k);
    if (pc !== undefined) inter += Math.min(c, pc);
  }
  const tCount = Math.max(0, target.length - n + 1);
  const pCount = Math.max(0, prediction.length - n + 1);
  const precision = inter / Math.max(pCount, 1);
  const recall = inter / Math.max(tCount, 1);
  return { precision, recall, fmeasure: rougeFmeasure(precision, recall) };
}

/** Sorted base-K keys of the n-grams of an id sequence (ids shifted by one so no digit is 0). */
function sortedNgramKeys(ids: Int32Array, n: number, K: number): Float64Array {
  const count = Math.max(0, ids.length - n + 1);
  const keys = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let key = 0;
    for (let j = 0; j < n; j++) key = key * K + ids[i + j] + 1;
    keys[i] = key;
  }
  return keys.sort();
}

/** N-gram overlap on interned ids: the clipped intersection is a merge of the two sorted key lists. */
function scoreNgramIds(target: Int32Array, prediction: Int32Array, n: number, K: number): RougeScore {
  if (n === 1) return scoreUnigramIds(target, prediction, K);
  const t = sortedNgramKeys(target, n, K);
  const p = sortedNgramKeys(prediction, n, K);
  let inter = 0;
  let i = 0;
  let j = 0;
  while (i < t.length && j < p.length) {
    if (t[i] === p[j]) {
      inter++;
      i++;
      j++;
    } else if (t[i] < p[j]) i++;
    else j++;
  }
  const precision = inter / Math.max(p.length, 1);
  const recall = inter / Math.max(t.length, 1);
  return { precision, recall, fmeasure: rougeFmeasure(precision, recall) };
}

/** ROUGE-1 on dense ids 0..K-2: count per id, clipped intersection. */
function scoreUnigramIds(target: Int32Array, prediction: Int32Array, K: number): RougeScore {
  const counts = new Int32Array(K);
  for (let i = 0; i < target.length; i++) counts[target[i]]++;
  let inter = 0;
  for (let i = 0; i < prediction.length; i++) {
    const id = prediction[i];
    if (counts[id] > 0) {
      counts[id]--;
      inter++;
    }
  }
  const precision = inter / Math.max(prediction.length, 1);
  const recall = inter / Math.max(target.length, 1);
  return { precision, recall, fmeasure: rougeFmeasure(precision, recall) };
}

function internInto(ids: Map<string, number>, xs: readonly string[]): Int32Array {
  const out = new Int32Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    let id = ids.get(xs[i]);
    if (id === undefined) {
      id = ids.size;
      ids.set(xs[i], id);
    }
    out[i] = id;
  }
  return out;
}

/** Maps tokens of both sides to small integers so the inner loops compare numbers. */
function intern(a: readonly string[], b: readonly string[]): [Int32Array, Int32Array, number] {
  const ids = new Map<string, number>();
  const ca = internInto(ids, a);
  const cb = internInto(ids, b);
  return [ca, cb, ids.size];
}

function lcsLengthIds(r: ArrayLike<number>, c: ArrayLike<number>): number {
  const cols = c.length;
  let prev = new Int32Array(cols + 1);
  let cur = new Int32Array(cols + 1);
  for (let i = 1; i <= r.length; i++) {
    const ri = r[i - 1];
    for (let j = 1; j <= cols; j++) {
      if (ri === c[j - 1]) cur[j] = prev[j - 1] + 1;
      else cur[j] = Math.max(prev[j], cur[j - 1]);
    }
    const t = prev;
    prev = cur;
    cur = t;
  }
  return prev[cols];
}

/** rouge-score's full LCS table ((rows+1) x (cols+1), row-major). */
export function lcsTable<T>(ref: readonly T[], can: readonly T[]): Int32Array[] {
  const rows = ref.length;
  const cols = can.length;
  const t: Int32Array[] = [];
  for (let i = 0; i <= rows; i++) t.push(new Int32Array(cols + 1));
  for (let i = 1; i <= rows; i++) {
    for (let j = 1; j <= cols; j++) {
      if (ref[i - 1] === can[j - 1]) t[i][j] = t[i - 1][j - 1] + 1;
      else t[i][j] = Math.max(t[i - 1][j], t[i][j - 1]);
    }
  }
  return t;
}

/** rouge-score lcs_ind: indices into ref of one LCS, read back from the table the way rouge-score does. */
export function lcsIndices<T>(ref: readonly T[], can: readonly T[]): number[] {
  const t = lcsTable(ref, can);
  let i = ref.length;
  let j = can.length;
  const out: number[] = [];
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i][j - 1] > t[i - 1][j]) j--;
    else i--;
  }
  return out.reverse();
}

export function findUnion(lcsList: readonly (readonly number[])[]): number[] {
  const s = new Set<number>();
  for (const l of lcsList) for (const x of l) s.add(x);
  return [...s].sort((a, b) => a - b);
}

export function unionLcs<T>(ref: readonly T[], candidates: readonly (readonly T[])[]): T[] {
  return findUnion(candidates.map((c) => lcsIndices(ref, c))).map((i) => ref[i]);
}

function scoreLcsIds(target: Int32Array, prediction: Int32Array): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { ...ZERO };
  const l = lcsLengthIds(target, prediction);
  const precision = l / prediction.length;
  const recall = l / target.length;
  return { precision, recall, fmeasure: rougeFmeasure(precision, recall) };
}

/** Summary-level LCS (ROUGE paper §3.2) with rouge-score's guard against counting a token twice. */
export function summaryLevelLcs<T>(
  refSents: readonly (readonly T[])[],
  canSents: readonly (readonly T[])[],
): RougeScore {
  if (refSents.length === 0 || canSents.length === 0) return { ...ZERO };
  let m = 0;
  let n = 0;
  for (const s of refSents) m += s.length;
  for (const s of canSents) n += s.length;
  if (!n || !m) return { ...ZERO };
  const cntR = new Map<T, number>();
  const cntC = new Map<T, number>();
  for (const s of refSents) for (const t of s) cntR.set(t, (cntR.get(t) ?? 0) + 1);
  for (const s of canSents) for (const t of s) cntC.set(t, (cntC.get(t) ?? 0) + 1);
  let hits = 0;
  for (const r of refSents) {
    for (const t of unionLcs(r, canSents)) {
      const c = cntC.get(t) ?? 0;
      const rr = cntR.get(t) ?? 0;
      if (c > 0 && rr > 0) {
        hits++;
        cntC.set(t, c - 1);
        cntR.set(t, rr - 1);
      }
    }
  }
  const recall = hits / m;
  const precision = hits / n;
  return { precision, recall, fmeasure: rougeFmeasure(precision, recall) };
}

const SENT_END = /([.!?]["')\]]*)[ \t]+(?=["'([]*[A-Z0-9])|([。！？][”’」』）]*)/g;

/** Rule-based sentence split used when splitSummaries is on (not NLTK punkt; see RougeOptions). */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const marked = line.replace(SENT_END, (_m, a: string | undefined, b: string | undefined) => `${a ?? b}\n`);
    for (const s of marked.split('\n')) if (s.trim().length) out.push(s.trim());
  }
  return out;
}

export class RougeScorer {
  readonly types: readonly string[];
  private readonly tok: RougeTokenizer;
  private readonly splitSummaries: boolean;
  private readonly maxChars: number;
  private readonly maxCells: number;

  constructor(types: readonly string[], opts: RougeOptions = {}) {
    if (types.length === 0) throw new LoomError('METRIC_OPTION', 'no ROUGE type given', { field: 'rouge_types' });
    for (const t of types) validateRougeType(t);
    this.types = types;
    const tk = opts.tokenizer ?? 'default';
    this.tok = typeof tk === 'string' ? getRougeTokenizer(tk, opts.useStemmer ?? false) : tk;
    this.splitSummaries = opts.splitSummaries ?? false;
    this.maxChars = opts.maxSegmentChars ?? MAX_ROUGE_SEGMENT_CHARS;
    this.maxCells = opts.maxLcsCells ?? MAX_LCS_CELLS;
  }

  /** Refuses pathological sizes before any quadratic (or merely slow) work; see MAX_LCS_CELLS. */
  private checkSizes(target: string, prediction: string): void {
    for (const [what, text] of [
      ['reference', target],
      ['hypothesis', prediction],
    ] as const) {
      if (text.length > this.maxChars) {
        throw new LoomError(
          'METRIC_INPUT',
          `the ${what} has ${text.length.toLocaleString('en-US')} characters, over ROUGE's limit of ${this.maxChars.toLocaleString('en-US')} per segment`,
          {
            hint: 'one line is one segment: a whole document on one line is probably a formatting mistake (split it into segments, one per line)',
          },
        );
      }
    }
  }

  private checkLcs(type: string, targetTokens: number, predictionTokens: number): void {
    const cells = targetTokens * predictionTokens;
    if (cells > this.maxCells) {
      throw new LoomError(
        'METRIC_INPUT',
        `${type} needs an LCS over ${targetTokens.toLocaleString('en-US')} × ${predictionTokens.toLocaleString('en-US')} tokens (${cells.toExponential(1)} cells), over the limit of ${this.maxCells.toExponential(1)}; LCS time is quadratic, so this is refused rather than left to run for hours`,
        {
          field: 'rouge_types',
          hint: 'split the long segment into one-per-line segments, or score it with --rouge-types rouge1,rouge2 (linear time)',
        },
      );
    }
  }

  tokenize(text: string): string[] {
    return this.tok.tokenize(text);
  }

  private sentences(text: string): string[] {
    return this.splitSummaries ? splitSentences(text) : text.split('\n').filter((s) => s.length > 0);
  }

  /** rouge-score RougeScorer.score(target, prediction). */
  score(target: string, prediction: string): Record<string, RougeScore> {
    this.checkSizes(target, prediction);
    const needTokens = this.types.some((t) => t !== 'rougeLsum');
    const tt = needTokens ? this.tok.tokenize(target) : [];
    const pt = needTokens ? this.tok.tokenize(prediction) : [];
    if (this.types.includes('rougeL')) this.checkLcs('rougeL', tt.length, pt.length);
    const [ti, pi, distinct] = intern(tt, pt);
    // Ids are shifted by one in n-gram keys so no digit is 0.
    const K = distinct + 1;
    const out: Record<string, RougeScore> = {};
    for (const type of this.types) {
      if (type === 'rougeL') out[type] = scoreLcsIds(ti, pi);
      else if (type === 'rougeLsum') {
        const refSents = this.sentences(target).map((s) => this.tok.tokenize(s));
        const canSents = this.sentences(prediction).map((s) => this.tok.tokenize(s));
        // Σ over sentence pairs of |r|·|c| is (Σ|r|)·(Σ|c|), and one pair's table can be all of it.
        const count = (xs: string[][]) => xs.reduce((a, x) => a + x.length, 0);
        this.checkLcs('rougeLsum', count(refSents), count(canSents));
        out[type] = summaryLevelLcs(refSents, canSents);
      } else {
        const n = Number(type.slice(5));
        out[type] = K ** n < 2 ** 53 ? scoreNgramIds(ti, pi, n, K) : scoreNgrams(tt, pt, n);
      }
    }
    return out;
  }

  /** rouge-score score_multi: per type, the target with the highest F (the first one on ties). */
  scoreMulti(targets: readonly string[], prediction: string): Record<string, RougeScore> {
    if (targets.length === 0) throw new LoomError('METRIC_INPUT', 'score_multi needs at least one target');
    const all = targets.map((t) => this.score(t, prediction));
    const out: Record<string, RougeScore> = {};
    for (const type of this.types) {
      let best = 0;
      for (let i = 1; i < all.length; i++) if (all[i][type].fmeasure > all[best][type].fmeasure) best = i;
      out[type] = all[best][type];
    }
    return out;
  }
}
