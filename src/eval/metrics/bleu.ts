/**
 * BLEU exactly as sacrebleu 2.x computes it (sacrebleu/metrics/bleu.py at 2.6.0): same tokenizers, n-gram
 * statistics, closest-reference length, smoothing methods, effective order, signature and score line.
 */
import { LoomError } from '../../core/errors.ts';
import { type BleuTokenizerName, getBleuTokenizer } from './bleu-tokenizers.ts';
import { type CorpusMetric, formatSignature, type RefStreams, referenceSets } from './corpus.ts';
import { NgramTrie } from './ngram-trie.ts';
import { pyFixed, pyRstrip, pySplit } from './pyfmt.ts';

export type BleuSmoothMethod = 'exp' | 'floor' | 'add-k' | 'none';
const BLEU_SMOOTH_DEFAULTS: Record<BleuSmoothMethod, number | null> = {
  none: null,
  floor: 0.1,
  'add-k': 1,
  exp: null,
};

export interface BleuOptions {
  tokenize?: BleuTokenizerName;
  lowercase?: boolean;
  smoothMethod?: BleuSmoothMethod;
  /** null/undefined: the method's default (floor 0.1, add-k 1). */
  smoothValue?: number | null;
  maxNgramOrder?: number;
  /** Drop n-gram orders with no hypothesis n-grams (use for sentence-level BLEU). */
  effectiveOrder?: boolean;
}

export interface BleuScore {
  name: 'BLEU';
  score: number;
  counts: number[];
  totals: number[];
  precisions: number[];
  bp: number;
  sysLen: number;
  refLen: number;
  ratio: number;
}

/** sacrebleu's my_log: log floored at a very low number so that 0 precisions give a 0 score. */
function myLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/** BLEU from sufficient statistics (sacrebleu BLEU.compute_bleu; its own default smoothing is 'none'). */
export function computeBleu(
  correctIn: readonly number[],
  totalIn: readonly number[],
  sysLen: number,
  refLen: number,
  smoothMethod: BleuSmoothMethod = 'none',
  smoothValue: number | null = null,
  effectiveOrder = false,
  maxNgramOrder = 4,
): BleuScore {
  if (!(smoothMethod in BLEU_SMOOTH_DEFAULTS)) {
    throw new LoomError('METRIC_OPTION', `unknown BLEU smoothing '${smoothMethod}'`, {
      field: 'smooth_method',
      hint: 'use exp, floor, add-k or none',
    });
  }
  const sv = smoothValue ?? BLEU_SMOOTH_DEFAULTS[smoothMethod] ?? 0;
  const correct = correctIn.slice(0, maxNgramOrder);
  const total = totalIn.slice(0, maxNgramOrder);
  let bp = 1.0;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0.0;
  const precisions = new Array<number>(maxNgramOrder).fill(0);
  const make = (score: number): BleuScore => ({
    name: 'BLEU',
    score,
    counts: correct,
    totals: total,
    precisions,
    bp,
    sysLen,
    refLen,
    ratio: refLen ? sysLen / refLen : 0,
  });
  // No matches at all: 0 whatever the smoothing (sacrebleu #141).
  if (!correct.some((c) => c !== 0)) return make(0.0);

  let smoothMteval = 1.0;
  let effOrder = maxNgramOrder;
  for (let n = 1; n <= maxNgramOrder; n++) {
    if (smoothMethod === 'add-k' && n > 1) {
      correct[n - 1] += sv;
      total[n - 1] += sv;
    }
    if (total[n - 1] === 0) break;
    if (effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      if (smoothMethod === 'exp') {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]);
      } else if (smoothMethod === 'floor') {
        precisions[n - 1] = (100 * sv) / total[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * correct[n - 1]) / total[n - 1];
    }
  }
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) logSum += myLog(precisions[i]);
  return make(bp * Math.exp(logSum / effOrder));
}

/** Token → per-segment id 1..K-1. */
function internTokens(local: Map<string, number>, toks: readonly string[]): Int32Array {
  const ids = new Int32Array(toks.length);
  for (let i = 0; i < toks.length; i++) {
    let id = local.get(toks[i]);
    if (id === undefined) {
      id = local.size + 1;
      local.set(toks[i], id);
    }
    ids[i] = id;
  }
  return ids;
}

function closestRefLen(hypLen: number, refLens: readonly number[]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const r of refLens) {
    const diff = Math.abs(hypLen - r);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = r;
    } else if (diff === closestDiff && r < closestLen) {
      closestLen = r;
    }
  }
  return closestLen;
}

/**
 * Matching statistics of one segment: [hypLen, refLen, correct_1..N, total_1..N]. Tokens are interned per segment
 * to 1..K-1 and every distinct n-gram of the segment becomes a node of a small trie (see ngram-trie.ts).
 */
function bleuSegmentStats(hyp: readonly string[], refs: readonly (readonly string[])[], maxOrder: number): number[] {
  const stats = new Array<number>(2 + 2 * maxOrder).fill(0);
  const hypLen = hyp.length;
  stats[0] = hypLen;
  stats[1] = closestRefLen(
    hypLen,
    refs.map((r) => r.length),
  );
  for (let n = 1; n <= maxOrder; n++) stats[1 + maxOrder + n] = Math.max(0, hypLen - n + 1);
  const local = new Map<string, number>();
  const hypIds = internTokens(local, hyp);
  const refIds: Int32Array[] = [];
  for (const r of refs) refIds.push(internTokens(local, r));
  if (refIds.length === 0) return stats;
  let totalLen = hypIds.length;
  for (const r of refIds) totalLen += r.length;
  const trie = new NgramTrie(maxOrder, local.size + 1, totalLen);
  const hOcc = trie.occurrences(hypIds);
  const rOcc = refIds.map((r) => trie.occurrences(r));
  trie.release();
  // refMax[node]: the n-gram's highest count in any one reference (the clip).
  const refMax = new Int32Array(trie.size);
  if (rOcc.length === 1) for (const v of rOcc[0]) refMax[v]++;
  else {
    const cnt = new Int32Array(trie.size);
    for (const occ of rOcc) {
      cnt.fill(0);
      for (const v of occ) cnt[v]++;
      for (const v of occ) if (cnt[v] > refMax[v]) refMax[v] = cnt[v];
    }
  }
  const depth = trie.depth;
  for (const v of hOcc) {
    if (refMax[v] > 0) {
      refMax[v]--;
      stats[1 + depth[v]]++;
    }
  }
  return stats;
}

export class Bleu implements CorpusMetric<BleuScore> {
  readonly name = 'BLEU';
  readonly tokenize: BleuTokenizerName;
  readonly lowercase: boolean;
  readonly smoothMethod: BleuSmoothMethod;
  readonly smoothValue: number | null;
  readonly maxNgramOrder: number;
  readonly effectiveOrder: boolean;
  private readonly tok: (line: string) => string;
  private readonly rawTok: (line: string) => string;

  constructor(opts: BleuOptions = {}) {
    this.tokenize = opts.tokenize ?? '13a';
    this.tok = getBleuTokenizer(this.tokenize);
    this.rawTok = getBleuTokenizer(this.tokenize, true);
    this.lowercase = opts.lowercase ?? false;
    this.smoothMethod = opts.smoothMethod ?? 'exp';
    if (!(this.smoothMethod in BLEU_SMOOTH_DEFAULTS)) {
      throw new LoomError('METRIC_OPTION', `unknown BLEU smoothing '${this.smoothMethod}'`, {
        field: 'smooth_method',
        hint: 'use exp, floor, add-k or none',
      });
    }
    this.smoothValue = opts.smoothValue ?? null;
    this.maxNgramOrder = opts.maxNgramOrder ?? 4;
    if (!Number.isInteger(this.maxNgramOrder) || this.maxNgramOrder < 1) {
      throw new LoomError('METRIC_OPTION', `max n-gram order must be a positive integer, got ${opts.maxNgramOrder}`, {
        field: 'max_ngram_order',
      });
    }
    this.effectiveOrder = opts.effectiveOrder ?? false;
  }

  /** sacrebleu _preprocess_segment: optional lowercase, then tokenize the right-stripped line. */
  preprocess(sent: string): string {
    if (this.lowercase) sent = sent.toLowerCase();
    return this.tok(pyRstrip(sent));
  }

  tokens(sent: string): string[] {
    if (this.lowercase) sent = sent.toLowerCase();
    return pySplit(this.rawTok(pyRstrip(sent)));
  }

  /** Statistics of one segment against its references (null references are dropped, '' is kept). */
  segmentStats(hyp: string, refs: readonly (string | null | undefined)[]): number[] {
    const present = refs.filter((r): r is string => r !== null && r !== undefined);
    return bleuSegmentStats(
      this.tokens(hyp),
      present.map((r) => this.tokens(r)),
      this.maxNgramOrder,
    );
  }

  corpusStats(hyps: readonly string[], refs: RefStreams): number[][] {
    const sets = referenceSets(hyps, refs);
    const out = new Array<number[]>(hyps.length);
    for (let i = 0; i < hyps.length; i++) {
      out[i] = bleuSegmentStats(
        this.tokens(hyps[i]),
        sets[i].map((r) => this.tokens(r)),
        this.maxNgramOrder,
      );
    }
    return out;
  }

  scoreFromStats(stats: ArrayLike<number>): BleuScore {
    const n = this.maxNgramOrder;
    const correct: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < n; i++) {
      correct.push(stats[2 + i]);
      total.push(stats[2 + n + i]);
    }
    return computeBleu(
      correct,
      total,
      Math.trunc(stats[0]),
      Math.trunc(stats[1]),
      this.smoothMethod,
      this.smoothValue,
      this.effectiveOrder,
      n,
    );
  }

  statsWidth(): number {
    return 2 + 2 * this.maxNgramOrder;
  }

  corpusScore(hyps: readonly string[], refs: RefStreams): BleuScore {
    return this.scoreFromStats(sumStats(this.corpusStats(hyps, refs), this.statsWidth()));
  }

  sentenceScore(hyp: string, refs: readonly (string | null | undefined)[]): BleuScore {
    return this.scoreFromStats(this.segmentStats(hyp, refs));
  }

  /** sacrebleu's signature, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`. */
  signature(numRefs: number | 'var', extra: SignatureExtra = {}): string {
    let smooth: string = this.smoothMethod;
    const def = BLEU_SMOOTH_DEFAULTS[this.smoothMethod];
    if (def !== null) smooth += `[${pyFixed(this.smoothValue ?? def, 2)}]`;
    return formatSignature(numRefs, extra, [
      ['case', this.lowercase ? 'lc' : 'mixed'],
      ['eff', this.effectiveOrder ? 'yes' : 'no'],
      ['tok', this.tokenize],
      ['smooth', smooth],
    ]);
  }
}

export interface SignatureExtra {
  bs?: number;
  ar?: number;
  seed?: number | string;
  version?: string;
}

function sumStats(stats: readonly ArrayLike<number>[], width: number): number[] {
  const out = new Array<number>(width).fill(0);
  for (const s of stats) for (let i = 0; i < width; i++) out[i] += s[i];
  return out;
}

/** sacrebleu's score line: `BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)`. */
export function formatBleu(
  s: BleuScore,
  opts: { width?: number; signature?: string; ci?: { mean: number; ci: number } } = {},
): string {
  const width = opts.width ?? 2;
  let sc = pyFixed(s.score, width);
  if (opts.ci && opts.ci.mean > 0) sc += ` (μ = ${pyFixed(opts.ci.mean, width)} ± ${pyFixed(opts.ci.ci, width)})`;
  const head = opts.signature ? `BLEU|${opts.signature}` : 'BLEU';
  const prec = s.precisions.map((p) => pyFixed(p, 1)).join('/');
  const verbose = `${prec} (BP = ${pyFixed(s.bp, 3)} ratio = ${pyFixed(s.ratio, 3)} hyp_len = ${s.sysLen} ref_len = ${s.refLen})`;
  return `${head} = ${sc} ${verbose}`;
}
