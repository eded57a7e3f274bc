/**
 * chrF and chrF++ exactly as sacrebleu 2.x computes them (sacrebleu/metrics/chrf.py at 2.6.0): character n-grams
 * up to char_order over the whitespace-stripped line, optional word n-grams with sacrebleu's punctuation split,
 * best reference by sentence F, corpus score from summed statistics, eps or effective-order smoothing.
 */
import { LoomError } from '../../core/errors.ts';
import { type CorpusMetric, formatSignature, type RefStreams, referenceSets } from './corpus.ts';
import { NgramTrie } from './ngram-trie.ts';
import { codePoints, hasSurrogates, pyFixed, pyRemoveSpaces, pySplit } from './pyfmt.ts';

export interface ChrfOptions {
  charOrder?: number;
  /** 0 = chrF, 2 = chrF++. */
  wordOrder?: number;
  beta?: number;
  lowercase?: boolean;
  /** Keep whitespace inside character n-grams. */
  whitespace?: boolean;
  /** sacrebleu's eps_smoothing (chrF++.py style); false = effective-order averaging (sacrebleu default). */
  epsSmoothing?: boolean;
}

export interface ChrfScore {
  name: string;
  score: number;
}

const PUNCTS = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'.split(''));

type Counts = Map<string, number>;

function charNgrams(line: string, maxOrder: number, includeWhitespace: boolean): Counts[] {
  if (!includeWhitespace) line = pyRemoveSpaces(line);
  const out: Counts[] = [];
  if (hasSurrogates(line)) {
    const cps = codePoints(line);
    for (let n = 1; n <= maxOrder; n++) {
      const m: Counts = new Map();
      for (let i = 0; i + n <= cps.length; i++) {
        const k = cps.slice(i, i + n).join('');
        m.set(k, (m.get(k) ?? 0) + 1);
      }
      out.push(m);
    }
    return out;
  }
  const len = line.length;
  for (let n = 1; n <= maxOrder; n++) {
    const m: Counts = new Map();
    for (let i = 0; i + n <= len; i++) {
      const k = line.substring(i, i + n);
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    out.push(m);
  }
  return out;
}

/** sacrebleu CHRF._remove_punctuation: split a leading or trailing ASCII punctuation mark off each word. */
function chrfWords(sent: string): string[] {
  const out: string[] = [];
  for (const w of pySplit(sent)) {
    const cps = hasSurrogates(w) ? codePoints(w) : null;
    const len = cps ? cps.length : w.length;
    if (len === 1) {
      out.push(w);
      continue;
    }
    const first = cps ? cps[0] : w[0];
    const last = cps ? cps[len - 1] : w[w.length - 1];
    if (PUNCTS.has(last)) out.push(w.slice(0, w.length - last.length), last);
    else if (PUNCTS.has(first)) out.push(first, w.slice(first.length));
    else out.push(w);
  }
  return out;
}

function wordNgrams(words: readonly string[], n: number): Counts {
  const m: Counts = new Map();
  for (let i = 0; i + n <= words.length; i++) {
    const k = words.slice(i, i + n).join(' ');
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** Char → per-segment id (BMP only), shared and reset after each segment; 0 = not yet seen. */
const CHAR_ID = new Int32Array(0x10000);

/** Per-segment character ids 1..K-1 for surrogate-free strings; returns the ids and K. */
function internChars(strs: readonly string[]): { ids: Int32Array[]; K: number } {
  const used: number[] = [];
  const ids = strs.map((str) => {
    const out = new Int32Array(str.length);
    for (let i = 0; i < str.length; i++) {
      const c = str.charCodeAt(i);
      let id = CHAR_ID[c];
      if (id === 0) {
        used.push(c);
        id = CHAR_ID[c] = used.length;
      }
      out[i] = id;
    }
    return out;
  });
  for (const c of used) CHAR_ID[c] = 0;
  return { ids, K: used.length + 1 };
}

interface RefNgrams {
  counts: Counts[];
  totals: number[];
}

export class Chrf implements CorpusMetric<ChrfScore> {
  readonly name: string;
  readonly charOrder: number;
  readonly wordOrder: number;
  readonly beta: number;
  readonly lowercase: boolean;
  readonly whitespace: boolean;
  readonly epsSmoothing: boolean;
  readonly order: number;

  constructor(opts: ChrfOptions = {}) {
    this.charOrder = opts.charOrder ?? 6;
    this.wordOrder = opts.wordOrder ?? 0;
    this.beta = opts.beta ?? 2;
    this.lowercase = opts.lowercase ?? false;
    this.whitespace = opts.whitespace ?? false;
    this.epsSmoothing = opts.epsSmoothing ?? false;
    for (const [k, v, min] of [
      ['char_order', this.charOrder, 1],
      ['word_order', this.wordOrder, 0],
      ['beta', this.beta, 0],
    ] as const) {
      if (!Number.isInteger(v) || v < min) {
        throw new LoomError('METRIC_OPTION', `chrF ${k} must be an integer >= ${min}, got ${v}`, { field: k });
      }
    }
    this.order = this.charOrder + this.wordOrder;
    this.name = `chrF${this.beta}${'+'.repeat(this.wordOrder)}`;
  }

  private ngrams(sent: string): Counts[] {
    if (this.lowercase) sent = sent.toLowerCase();
    const all = charNgrams(sent, this.charOrder, this.whitespace);
    if (this.wordOrder > 0) {
      const words = chrfWords(sent);
      for (let n = 1; n <= this.wordOrder; n++) all.push(wordNgrams(words, n));
    }
    return all;
  }

  private refNgrams(ref: string): RefNgrams {
    const counts = this.ngrams(ref);
    return {
      counts,
      totals: counts.map((m) => {
        let t = 0;
        for (const c of m.values()) t += c;
        return t;
      }),
    };
  }

  /** sacrebleu CHRF._compute_f_score over flattened [hyp, ref, match] triples, on a 0..100 scale. */
  fScore(stats: ArrayLike<number>): number {
    const eps = 1e-16;
    let score = 0.0;
    let effectiveOrder = 0;
    const factor = this.beta ** 2;
    let avgPrec = 0.0;
    let avgRec = 0.0;
    for (let i = 0; i < this.order; i++) {
      const nHyp = stats[3 * i];
      const nRef = stats[3 * i + 1];
      const nMatch = stats[3 * i + 2];
      const prec = nHyp > 0 ? nMatch / nHyp : eps;
      const rec = nRef > 0 ? nMatch / nRef : eps;
      const denom = factor * prec + rec;
      score += denom > 0 ? ((1 + factor) * prec * rec) / denom : eps;
      if (nHyp > 0 && nRef > 0) {
        avgPrec += prec;
        avgRec += rec;
        effectiveOrder += 1;
      }
    }
    if (this.epsSmoothing) return (100 * score) / this.order;
    if (effectiveOrder === 0) {
      avgPrec = 0.0;
      avgRec = 0.0;
    } else {
      avgPrec /= effectiveOrder;
      avgRec /= effectiveOrder;
    }
    if (avgPrec + avgRec) {
      let s = (1 + factor) * avgPrec * avgRec;
      s /= factor * avgPrec + avgRec;
      return 100 * s;
    }
    return 0.0;
  }

  private bestOf(candidates: readonly number[][]): number[] {
    let best: number[] | null = null;
    let bestF = -1.0;
    for (const stats of candidates) {
      const f = this.fScore(stats);
      if (f > bestF) {
        bestF = f;
        best = stats;
      }
    }
    return best ?? new Array<number>(3 * this.order).fill(0);
  }

  private segmentFromNgrams(hyp: Counts[], refs: readonly RefNgrams[]): number[] {
    return this.bestOf(
      refs.map((ref) => {
        const stats = new Array<number>(3 * this.order);
        for (let o = 0; o < this.order; o++) {
          const h = hyp[o];
          const r = ref.counts[o];
          let match = 0;
          let hypCount = 0;
          for (const [k, c] of h) {
            hypCount += c;
            const rc = r.get(k);
            if (rc !== undefined) match += Math.min(c, rc);
          }
          stats[3 * o] = r.size > 0 ? hypCount : 0;
          stats[3 * o + 1] = ref.totals[o];
          stats[3 * o + 2] = match;
        }
        return stats;
      }),
    );
  }

  /**
   * Fast path for the character part: characters get per-segment ids, and every distinct character n-gram of the
   * segment (hypothesis and references together) becomes a node of a small trie, so counting is array work.
   * Used when no string holds surrogates; word n-grams (chrF++) still use string keys.
   */
  private segmentStatsFast(hyp: string, refs: readonly string[]): number[] | null {
    if (this.lowercase) {
      hyp = hyp.toLowerCase();
      refs = refs.map((r) => r.toLowerCase());
    }
    const hypChars = this.whitespace ? hyp : pyRemoveSpaces(hyp);
    const refChars = refs.map((r) => (this.whitespace ? r : pyRemoveSpaces(r)));
    if (hasSurrogates(hypChars) || refChars.some(hasSurrogates)) return null;
    const { ids, K } = internChars([hypChars, ...refChars]);
    let totalLen = 0;
    for (const x of ids) totalLen += x.length;
    const trie = new NgramTrie(this.charOrder, K, totalLen);
    const [hOcc, ...rOcc] = ids.map((x) => trie.occurrences(x));
    trie.release();
    const co = this.charOrder;
    const hWords: Counts[] = [];
    if (this.wordOrder > 0) {
      const w = chrfWords(hyp);
      for (let n = 1; n <= this.wordOrder; n++) hWords.push(wordNgrams(w, n));
    }
    const remaining = new Int32Array(trie.size);
    return this.bestOf(
      rOcc.map((occ, ri) => {
        const stats = new Array<number>(3 * this.order).fill(0);
        remaining.fill(0);
        for (let i = 0; i < occ.length; i++) remaining[occ[i]]++;
        const match = new Array<number>(co).fill(0);
        for (let i = 0; i < hOcc.length; i++) {
          const v = hOcc[i];
          if (remaining[v] > 0) {
            remaining[v]--;
            match[trie.depth[v] - 1]++;
          }
        }
        const hLen = hypChars.length;
        const rLen = refChars[ri].length;
        for (let o = 0; o < co; o++) {
          const refTotal = Math.max(0, rLen - o);
          stats[3 * o] = refTotal > 0 ? Math.max(0, hLen - o) : 0;
          stats[3 * o + 1] = refTotal;
          stats[3 * o + 2] = match[o];
        }
        if (this.wordOrder > 0) {
          const w = chrfWords(refs[ri]);
          for (let n = 1; n <= this.wordOrder; n++) {
            const o = co + n - 1;
            const r = wordNgrams(w, n);
            let m = 0;
            let hypCount = 0;
            for (const [k, c] of hWords[n - 1]) {
              hypCount += c;
              const rc = r.get(k);
              if (rc !== undefined) m += Math.min(c, rc);
            }
            let refTotal = 0;
            for (const c of r.values()) refTotal += c;
            stats[3 * o] = r.size > 0 ? hypCount : 0;
            stats[3 * o + 1] = refTotal;
            stats[3 * o + 2] = m;
          }
        }
        return stats;
      }),
    );
  }

  segmentStats(hyp: string, refs: readonly (string | null | undefined)[]): number[] {
    const present = refs.filter((r): r is string => r !== null && r !== undefined);
    return (
      this.segmentStatsFast(hyp, present) ??
      this.segmentFromNgrams(
        this.ngrams(hyp),
        present.map((r) => this.refNgrams(r)),
      )
    );
  }

  corpusStats(hyps: readonly string[], refs: RefStreams): number[][] {
    const sets = referenceSets(hyps, refs);
    return hyps.map(
      (h, i) =>
        this.segmentStatsFast(h, sets[i]) ??
        this.segmentFromNgrams(
          this.ngrams(h),
          sets[i].map((r) => this.refNgrams(r)),
        ),
    );
  }

  statsWidth(): number {
    return 3 * this.order;
  }

  scoreFromStats(stats: ArrayLike<number>): ChrfScore {
    return { name: this.name, score: this.fScore(stats) };
  }

  corpusScore(hyps: readonly string[], refs: RefStreams): ChrfScore {
    const width = this.statsWidth();
    const sum = new Array<number>(width).fill(0);
    for (const s of this.corpusStats(hyps, refs)) for (let i = 0; i < width; i++) sum[i] += s[i];
    return this.scoreFromStats(sum);
  }

  sentenceScore(hyp: string, refs: readonly (string | null | undefined)[]): ChrfScore {
    return this.scoreFromStats(this.segmentStats(hyp, refs));
  }

  signature(nrefs: number | 'var', extra: { bs?: number; ar?: number; seed?: number | string; version?: string } = {}) {
    return formatSignature(nrefs, extra, [
      ['case', this.lowercase ? 'lc' : 'mixed'],
      ['eff', this.epsSmoothing ? 'no' : 'yes'],
      ['nc', this.charOrder],
      ['nw', this.wordOrder],
      ['space', this.whitespace ? 'yes' : 'no'],
    ]);
  }
}

/** sacrebleu's score line: `chrF2 = 59.73` (or `chrF2++|nrefs:…|version:… = 59.73`). */
export function formatChrf(
  s: ChrfScore,
  opts: { width?: number; signature?: string; ci?: { mean: number; ci: number } } = {},
): string {
  const width = opts.width ?? 2;
  let sc = pyFixed(s.score, width);
  if (opts.ci && opts.ci.mean > 0) sc += ` (μ = ${pyFixed(opts.ci.mean, width)} ± ${pyFixed(opts.ci.ci, width)})`;
  return `${opts.signature ? `${s.name}|${opts.signature}` : s.name} = ${sc}`;
}
