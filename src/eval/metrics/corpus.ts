/**
 * Shared shape of corpus-level metrics (BLEU, chrF): per-segment sufficient statistics that sum to corpus
 * statistics. That shape is what makes bootstrap resampling and paired tests cheap (sacrebleu does the same).
 */
import { LoomError } from '../../core/errors.ts';

/** The sacrebleu release whose behaviour we reproduce (mjpost/sacrebleu@f615c72, 2.6.0). */
export const SACREBLEU_VERSION = '2.6.0';

/**
 * References as sacrebleu takes them: `refs[k][i]` is the k-th reference of hypothesis i. A `null` entry means
 * "no k-th reference for this segment" (variable reference counts); '' is kept as an empty reference.
 */
export type RefStreams = readonly (readonly (string | null | undefined)[])[];

export interface CorpusMetric<S extends { score: number }> {
  readonly name: string;
  corpusStats(hyps: readonly string[], refs: RefStreams): number[][];
  scoreFromStats(stats: ArrayLike<number>): S;
  statsWidth(): number;
}

/** Per-segment reference lists with null references dropped; validates that every stream has one line per hyp. */
export function referenceSets(hyps: readonly string[], refs: RefStreams): string[][] {
  if (refs.length === 0) throw new LoomError('METRIC_INPUT', 'no reference stream given');
  refs.forEach((stream, k) => {
    if (stream.length !== hyps.length) {
      throw new LoomError(
        'METRIC_INPUT',
        `reference stream ${k + 1} has ${stream.length} segments but there are ${hyps.length} hypotheses`,
      );
    }
  });
  const out = new Array<string[]>(hyps.length);
  for (let i = 0; i < hyps.length; i++) {
    const set: string[] = [];
    for (const stream of refs) {
      const r = stream[i];
      if (r !== null && r !== undefined) set.push(r);
    }
    out[i] = set;
  }
  return out;
}

/** sacrebleu's nrefs: the per-segment reference count if constant, else 'var'. */
export function numRefs(hyps: readonly string[], refs: RefStreams): number | 'var' {
  const counts = new Set(referenceSets(hyps, refs).map((s) => s.length));
  return counts.size === 1 ? [...counts][0] : 'var';
}

/**
 * sacrebleu's Signature.format: global keys in their fixed order (nrefs, bs, ar, seed), then the metric's own
 * keys, then the version last; absent values are skipped.
 */
export function formatSignature(
  nrefs: number | 'var',
  extra: { bs?: number; ar?: number; seed?: number | string; version?: string },
  metricKeys: readonly [string, string | number][],
): string {
  const pairs: string[] = [`nrefs:${nrefs}`];
  if (extra.bs !== undefined) pairs.push(`bs:${extra.bs}`);
  if (extra.ar !== undefined) pairs.push(`ar:${extra.ar}`);
  if (extra.seed !== undefined) pairs.push(`seed:${String(extra.seed).toLowerCase()}`);
  for (const [k, v] of metricKeys) pairs.push(`${k}:${v}`);
  pairs.push(`version:${extra.version ?? SACREBLEU_VERSION}`);
  return pairs.join('|');
}
