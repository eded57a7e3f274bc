/**
 * Resampling statistics for metrics: bootstrap confidence intervals (corpus metrics resample segments and
 * recompute the corpus score from summed statistics, like sacrebleu --confidence), paired bootstrap resampling
 * and paired approximate randomization (sacrebleu's paired tests), and rouge-score's BootstrapAggregator.
 * Seeded with our own generator: the procedure is sacrebleu's, the random draws are not numpy's.
 */
import { LoomError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import type { CorpusMetric } from './corpus.ts';

/** Resample indices: n rows of `size` draws with replacement. */
function bootstrapIndices(rng: Rng, nSamples: number, size: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let s = 0; s < nSamples; s++) {
    const row = new Int32Array(size);
    for (let i = 0; i < size; i++) row[i] = rng.intUnbiased(size);
    out.push(row);
  }
  return out;
}

function sumRows(stats: readonly ArrayLike<number>[], idx: ArrayLike<number>, width: number): Float64Array {
  const sum = new Float64Array(width);
  for (let i = 0; i < idx.length; i++) {
    const row = stats[idx[i]];
    for (let k = 0; k < width; k++) sum[k] += row[k];
  }
  return sum;
}

/** sacrebleu estimate_ci: mean of the resampled scores and half the width of the central 95% (1/40 from each side). */
export function estimateCi(scores: readonly number[]): { mean: number; ci: number } {
  const s = [...scores].sort((a, b) => a - b);
  const n = s.length;
  const lo = Math.floor(n / 40);
  const hi = n - lo - 1;
  let mean = 0;
  for (const x of s) mean += x;
  mean /= n;
  return { mean, ci: 0.5 * (s[hi] - s[lo]) };
}

/** numpy.percentile with its default linear interpolation, on an already sorted array. */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = ((n - 1) * q) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  const t = h - lo;
  const a = sorted[lo];
  const b = sorted[hi];
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

export interface BootstrapResult {
  score: number;
  mean: number;
  /** Half-width of the 95% interval (sacrebleu's ± figure). */
  ci: number;
  low: number;
  high: number;
  nSamples: number;
  seed: number;
}

export interface ResampleOptions {
  nSamples?: number;
  seed?: number;
  /** Central interval for low/high (default 0.95). */
  confidence?: number;
}

/** Bootstrap CI of a corpus metric: resample segments, recompute the corpus score from summed statistics. */
export function bootstrapCorpus<S extends { score: number }>(
  metric: CorpusMetric<S>,
  segStats: readonly ArrayLike<number>[],
  opts: ResampleOptions = {},
): BootstrapResult {
  const nSamples = opts.nSamples ?? 1000;
  const seed = opts.seed ?? 12345;
  if (segStats.length === 0) throw new LoomError('METRIC_INPUT', 'bootstrap needs at least one segment');
  const width = metric.statsWidth();
  const score = metric.scoreFromStats(sumRows(segStats, range(segStats.length), width)).score;
  const rng = new Rng(seed);
  const scores = bootstrapIndices(rng, nSamples, segStats.length).map(
    (idx) => metric.scoreFromStats(sumRows(segStats, idx, width)).score,
  );
  return { score, ...summarize(scores, opts.confidence ?? 0.95), nSamples, seed };
}

/** Bootstrap CI of the mean of per-example values (EM, F1, accuracy, sentence scores). */
export function bootstrapMean(values: readonly number[], opts: ResampleOptions = {}): BootstrapResult {
  const nSamples = opts.nSamples ?? 1000;
  const seed = opts.seed ?? 12345;
  if (values.length === 0) throw new LoomError('METRIC_INPUT', 'bootstrap needs at least one value');
  const rng = new Rng(seed);
  let total = 0;
  for (const v of values) total += v;
  const scores = bootstrapIndices(rng, nSamples, values.length).map((idx) => {
    let s = 0;
    for (let i = 0; i < idx.length; i++) s += values[idx[i]];
    return s / idx.length;
  });
  return { score: total / values.length, ...summarize(scores, opts.confidence ?? 0.95), nSamples, seed };
}

function summarize(scores: number[], confidence: number): { mean: number; ci: number; low: number; high: number } {
  const { mean, ci } = estimateCi(scores);
  const sorted = [...scores].sort((a, b) => a - b);
  const d = ((1 - confidence) / 2) * 100;
  return { mean, ci, low: percentileSorted(sorted, d), high: percentileSorted(sorted, 100 - d) };
}

function range(n: number): Int32Array {
  const r = new Int32Array(n);
  for (let i = 0; i < n; i++) r[i] = i;
  return r;
}

export interface PairedResult {
  test: 'bs' | 'ar';
  baseline: number;
  system: number;
  /** system − baseline. */
  delta: number;
  pValue: number;
  nSamples: number;
  seed: number;
  /** Bootstrap mean and 95% half-width of the system score (paired bootstrap only). */
  systemMean?: number;
  systemCi?: number;
}

function checkPaired(a: readonly unknown[], b: readonly unknown[]): void {
  if (a.length !== b.length) {
    throw new LoomError(
      'METRIC_INPUT',
      `paired test needs the same segments: baseline has ${a.length}, system ${b.length}`,
    );
  }
  if (a.length === 0) throw new LoomError('METRIC_INPUT', 'paired test needs at least one segment');
}

/** Both systems' corpus scores over all segments, after checking they score the same segments. */
function pairedCorpusScores<S extends { score: number }>(
  metric: CorpusMetric<S>,
  baseStats: readonly ArrayLike<number>[],
  sysStats: readonly ArrayLike<number>[],
): { width: number; baseline: number; system: number } {
  checkPaired(baseStats, sysStats);
  const width = metric.statsWidth();
  const all = range(baseStats.length);
  return {
    width,
    baseline: metric.scoreFromStats(sumRows(baseStats, all, width)).score,
    system: metric.scoreFromStats(sumRows(sysStats, all, width)).score,
  };
}

/**
 * Paired bootstrap resampling (Koehn 2004; sacrebleu _paired_bs_test): the same resampled segment sets score both
 * systems; p = (#{|Δ*| − mean|Δ*| > |Δ|} + 1) / (n + 1).
 */
export function pairedBootstrap<S extends { score: number }>(
  metric: CorpusMetric<S>,
  baseStats: readonly ArrayLike<number>[],
  sysStats: readonly ArrayLike<number>[],
  opts: ResampleOptions = {},
): PairedResult {
  const { width, baseline, system } = pairedCorpusScores(metric, baseStats, sysStats);
  const nSamples = opts.nSamples ?? 1000;
  const seed = opts.seed ?? 12345;
  const idxs = bootstrapIndices(new Rng(seed), nSamples, baseStats.length);
  const bl = idxs.map((idx) => metric.scoreFromStats(sumRows(baseStats, idx, width)).score);
  const sy = idxs.map((idx) => metric.scoreFromStats(sumRows(sysStats, idx, width)).score);
  const { mean, ci } = estimateCi(sy);
  const diffs = sy.map((s, i) => Math.abs(s - bl[i]));
  let m = 0;
  for (const d of diffs) m += d;
  m /= diffs.length;
  const real = Math.abs(baseline - system);
  let c = 0;
  for (const d of diffs) if (d - m > real) c++;
  return {
    test: 'bs',
    baseline,
    system,
    delta: system - baseline,
    pValue: (c + 1) / (nSamples + 1),
    nSamples,
    seed,
    systemMean: mean,
    systemCi: ci,
  };
}

/**
 * Paired approximate randomization (Riezler & Maxwell 2005; sacrebleu _paired_ar_test): swap each segment's
 * statistics between the systems with probability 1/2; p = (#{|Δ*| > |Δ|} + 1) / (n + 1).
 */
export function pairedApproxRandomization<S extends { score: number }>(
  metric: CorpusMetric<S>,
  baseStats: readonly ArrayLike<number>[],
  sysStats: readonly ArrayLike<number>[],
  opts: ResampleOptions = {},
): PairedResult {
  const { width, baseline, system } = pairedCorpusScores(metric, baseStats, sysStats);
  const nSamples = opts.nSamples ?? 10000;
  const seed = opts.seed ?? 12345;
  const n = baseStats.length;
  const real = Math.abs(baseline - system);
  const rng = new Rng(seed);
  let c = 0;
  const a = new Float64Array(width);
  const b = new Float64Array(width);
  for (let s = 0; s < nSamples; s++) {
    a.fill(0);
    b.fill(0);
    for (let i = 0; i < n; i++) {
      const swap = rng.bit();
      const x = swap ? sysStats[i] : baseStats[i];
      const y = swap ? baseStats[i] : sysStats[i];
      for (let k = 0; k < width; k++) {
        a[k] += x[k];
        b[k] += y[k];
      }
    }
    if (Math.abs(metric.scoreFromStats(a).score - metric.scoreFromStats(b).score) > real) c++;
  }
  return { test: 'ar', baseline, system, delta: system - baseline, pValue: (c + 1) / (nSamples + 1), nSamples, seed };
}

/** A corpus "metric" whose statistics are one value per segment and whose score is their mean (EM, F1, acc…). */
export function meanMetric(name: string): CorpusMetric<{ score: number }> {
  return {
    name,
    corpusStats: () => {
      throw new LoomError('INTERNAL', 'meanMetric has no text statistics; pass per-example values as [[v, 1], …]');
    },
    statsWidth: () => 2,
    scoreFromStats: (s) => ({ score: s[1] > 0 ? s[0] / s[1] : 0 }),
  };
}

export interface AggregateScore<T> {
  low: T;
  mid: T;
  high: T;
}

/**
 * rouge-score BootstrapAggregator.aggregate: resample the per-example score rows, take the mean of each resample,
 * report numpy-style percentiles at (1−ci)/2, 50 and 1−(1−ci)/2 per measure.
 */
export function bootstrapAggregate<K extends string>(
  rows: readonly Record<K, number>[],
  opts: { confidenceInterval?: number; nSamples?: number; seed?: number } = {},
): AggregateScore<Record<K, number>> {
  const ci = opts.confidenceInterval ?? 0.95;
  const nSamples = opts.nSamples ?? 1000;
  if (ci < 0 || ci > 1) throw new LoomError('METRIC_OPTION', 'confidence_interval must be in [0, 1]');
  if (nSamples <= 0) throw new LoomError('METRIC_OPTION', 'n_samples must be positive');
  if (rows.length === 0) throw new LoomError('METRIC_INPUT', 'nothing to aggregate');
  const keys = Object.keys(rows[0]) as K[];
  const rng = new Rng(opts.seed ?? 12345);
  const means: Float64Array[] = keys.map(() => new Float64Array(nSamples));
  for (let s = 0; s < nSamples; s++) {
    const sums = new Float64Array(keys.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[rng.intUnbiased(rows.length)];
      for (let k = 0; k < keys.length; k++) sums[k] += r[keys[k]];
    }
    for (let k = 0; k < keys.length; k++) means[k][s] = sums[k] / rows.length;
  }
  const delta = (1 - ci) / 2;
  const qs = [100 * delta, 100 * 0.5, 100 * (1 - delta)];
  const at = (j: number) => {
    const o = {} as Record<K, number>;
    keys.forEach((k, idx) => {
      o[k] = percentileSorted(means[idx].slice().sort(), qs[j]);
    });
    return o;
  };
  return { low: at(0), mid: at(1), high: at(2) };
}
