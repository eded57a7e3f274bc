/**
 * One entry point over all reference-based metrics: score hypotheses against reference streams and return the
 * corpus figure, its sacrebleu-style line, per-segment scores and, on request, a bootstrap confidence interval
 * and a paired significance test against a second system. `loom eval metric` and eval suites call this.
 */
import { readFileSync } from 'node:fs';
import { decodeTextStrict, encodingLabel } from '../../core/encoding.ts';
import { LoomError } from '../../core/errors.ts';
import { Bleu, type BleuOptions, formatBleu } from './bleu.ts';
import { Chrf, type ChrfOptions, formatChrf } from './chrf.ts';
import { type ClassificationReport, classificationReport, type ExtractOptions, extractLabel } from './classify.ts';
import { type CorpusMetric, numRefs, type RefStreams, referenceSets } from './corpus.ts';
import { pyFixed } from './pyfmt.ts';
import { type RougeOptions, RougeScorer } from './rouge.ts';
import {
  type BootstrapResult,
  bootstrapAggregate,
  bootstrapCorpus,
  bootstrapMean,
  meanMetric,
  type PairedResult,
  pairedApproxRandomization,
  pairedBootstrap,
} from './stats.ts';
import { exactMatch, type NormalizeOptions, tokenF1 } from './text.ts';

export const METRIC_NAMES = ['bleu', 'chrf', 'rouge', 'em', 'f1', 'prf'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export interface MetricRunOptions {
  bleu?: BleuOptions;
  chrf?: ChrfOptions;
  rouge?: RougeOptions & { types?: string[] };
  normalize?: NormalizeOptions;
  prf?: { labels?: string[]; extract?: ExtractOptions };
  /** Bootstrap resamples for a confidence interval (0 = none). */
  bootstrap?: number;
  seed?: number;
  /** Second system's hypotheses (same segments) for a paired test: its score is the baseline. */
  baseline?: readonly string[];
  pairedTest?: 'bs' | 'ar';
  pairedSamples?: number;
}

export interface SegmentScore {
  index: number;
  score: number;
  /** ROUGE: every type's P/R/F; prf: gold and predicted label. */
  detail?: Record<string, unknown>;
}

export interface MetricReport {
  metric: MetricName;
  name: string;
  /** Headline figure (BLEU/chrF on 0..100; ROUGE F, EM, F1, accuracy on 0..1). */
  score: number;
  formatted: string;
  signature?: string;
  nrefs: number | 'var';
  n: number;
  segments: SegmentScore[];
  /** Extra corpus detail: BLEU statistics, ROUGE per type, classification report. */
  detail?: Record<string, unknown>;
  bootstrap?: BootstrapResult | Record<string, unknown>;
  paired?: PairedResult;
}

function asMetric(name: string): MetricName {
  if ((METRIC_NAMES as readonly string[]).includes(name)) return name as MetricName;
  throw new LoomError('METRIC_OPTION', `unknown metric '${name}'`, { hint: `use one of ${METRIC_NAMES.join(', ')}` });
}

/** Scores hypotheses against reference streams (refs[k][i] = k-th reference of hypothesis i). */
export function scoreMetric(
  metricName: string,
  hyps: readonly string[],
  refs: RefStreams,
  opts: MetricRunOptions = {},
): MetricReport {
  const metric = asMetric(metricName);
  if (hyps.length === 0) throw new LoomError('METRIC_INPUT', 'no hypotheses to score');
  const sets = referenceSets(hyps, refs);
  const nrefs = numRefs(hyps, refs);
  if (opts.baseline && opts.baseline.length !== hyps.length) {
    throw new LoomError(
      'METRIC_INPUT',
      `the baseline has ${opts.baseline.length} segments but the system has ${hyps.length}`,
    );
  }
  const seed = opts.seed ?? 12345;
  const nBoot = opts.bootstrap ?? 0;
  switch (metric) {
    case 'bleu':
    case 'chrf': {
      const m: CorpusMetric<{ score: number; name: string }> & {
        signature(n: number | 'var', e?: object): string;
      } = metric === 'bleu' ? new Bleu(opts.bleu) : new Chrf(opts.chrf);
      const stats = m.corpusStats(hyps, refs);
      const width = m.statsWidth();
      const sum = new Array<number>(width).fill(0);
      for (const s of stats) for (let i = 0; i < width; i++) sum[i] += s[i];
      const corpus = m.scoreFromStats(sum);
      // Segment scores as sacrebleu --sentence-level gives them: BLEU with effective order.
      const segMetric = metric === 'bleu' ? new Bleu({ ...opts.bleu, effectiveOrder: true }) : m;
      const segments = stats.map((s, index) => ({ index, score: segMetric.scoreFromStats(s).score }));
      const boot = nBoot > 0 ? bootstrapCorpus(m, stats, { nSamples: nBoot, seed }) : undefined;
      const signature = m.signature(nrefs, boot ? { bs: nBoot, seed } : {});
      const ci = boot ? { mean: boot.mean, ci: boot.ci } : undefined;
      const formatted =
        metric === 'bleu'
          ? formatBleu(corpus as ReturnType<Bleu['scoreFromStats']>, { ci })
          : formatChrf(corpus, { ci });
      let paired: PairedResult | undefined;
      if (opts.baseline) {
        const base = m.corpusStats(opts.baseline, refs);
        paired =
          opts.pairedTest === 'ar'
            ? pairedApproxRandomization(m, base, stats, { nSamples: opts.pairedSamples, seed })
            : pairedBootstrap(m, base, stats, { nSamples: opts.pairedSamples, seed });
      }
      return {
        metric,
        name: corpus.name,
        score: corpus.score,
        formatted,
        signature,
        nrefs,
        n: hyps.length,
        segments,
        detail: metric === 'bleu' ? { ...(corpus as object) } : undefined,
        bootstrap: boot,
        paired,
      };
    }
    case 'rouge': {
      const types = opts.rouge?.types ?? ['rouge1', 'rouge2', 'rougeL', 'rougeLsum'];
      const scorer = new RougeScorer(types, opts.rouge);
      // A refusal (rouge.ts size caps) names the segment: line i + 1 of the hypothesis and reference files.
      const scoreAt = (h: string, i: number) => {
        try {
          return sets[i].length === 1 ? scorer.score(sets[i][0], h) : scorer.scoreMulti(sets[i], h);
        } catch (e) {
          if (!(e instanceof LoomError)) throw e;
          throw new LoomError(e.code, `segment ${i + 1} (line ${i + 1}): ${e.message}`, {
            line: i + 1,
            field: e.field,
            hint: e.hint,
          });
        }
      };
      const per = hyps.map(scoreAt);
      const head = types.includes('rougeL') ? 'rougeL' : types[0];
      const means: Record<string, { precision: number; recall: number; fmeasure: number }> = {};
      for (const t of types) {
        const acc = { precision: 0, recall: 0, fmeasure: 0 };
        for (const p of per) {
          acc.precision += p[t].precision;
          acc.recall += p[t].recall;
          acc.fmeasure += p[t].fmeasure;
        }
        means[t] = {
          precision: acc.precision / per.length,
          recall: acc.recall / per.length,
          fmeasure: acc.fmeasure / per.length,
        };
      }
      const formatted = types.map((t) => `${t} = ${pyFixed(100 * means[t].fmeasure, 2)}`).join(' ');
      const bootstrap =
        nBoot > 0
          ? Object.fromEntries(
              types.map((t) => [
                t,
                bootstrapAggregate(
                  per.map((p) => p[t]),
                  { nSamples: nBoot, seed },
                ),
              ]),
            )
          : undefined;
      let paired: PairedResult | undefined;
      if (opts.baseline) {
        const base = opts.baseline.map(scoreAt);
        paired = pairedMean(
          base.map((b) => b[head].fmeasure),
          per.map((p) => p[head].fmeasure),
          opts,
          seed,
        );
      }
      return {
        metric,
        name: head,
        score: means[head].fmeasure,
        formatted,
        nrefs,
        n: hyps.length,
        segments: per.map((p, index) => ({ index, score: p[head].fmeasure, detail: p })),
        detail: means,
        bootstrap,
        paired,
      };
    }
    case 'em':
    case 'f1': {
      const fn = metric === 'em' ? exactMatch : tokenF1;
      const values = hyps.map((h, i) => fn(h, sets[i], opts.normalize));
      const base = opts.baseline?.map((h, i) => fn(h, sets[i], opts.normalize));
      return meanReport(metric, metric === 'em' ? 'EM' : 'F1', values, nrefs, opts, seed, base);
    }
    case 'prf': {
      const labelsGiven = opts.prf?.labels;
      const gold = sets.map((s, i) => {
        if (s.length === 0) throw new LoomError('METRIC_INPUT', `segment ${i + 1} has no gold label`);
        return s[0].trim();
      });
      const known = labelsGiven ?? [...new Set(gold)].sort();
      const pred = hyps.map((h) =>
        opts.prf?.extract ? extractLabel(h, known, opts.prf.extract) : h.trim() === '' ? null : h.trim(),
      );
      const report: ClassificationReport = classificationReport(gold, pred, labelsGiven);
      const values = pred.map((p, i) => (p === gold[i] ? 1 : 0));
      const basePred = opts.baseline?.map((h) =>
        opts.prf?.extract ? extractLabel(h, known, opts.prf.extract) : h.trim() === '' ? null : h.trim(),
      );
      const r = meanReport(
        'prf',
        'accuracy',
        values,
        nrefs,
        opts,
        seed,
        basePred?.map((p, i) => (p === gold[i] ? 1 : 0)),
      );
      r.segments = values.map((score, index) => ({ index, score, detail: { gold: gold[index], pred: pred[index] } }));
      r.detail = report as unknown as Record<string, unknown>;
      r.formatted = `accuracy = ${pyFixed(report.accuracy, 4)} macro-F1 = ${pyFixed(report.macro.f1, 4)} micro-F1 = ${pyFixed(report.micro.f1, 4)} weighted-F1 = ${pyFixed(report.weighted.f1, 4)}`;
      return r;
    }
  }
}

function pairedMean(base: number[], sys: number[], opts: MetricRunOptions, seed: number): PairedResult {
  const m = meanMetric('mean');
  const toStats = (xs: number[]) => xs.map((x) => [x, 1]);
  return opts.pairedTest === 'ar'
    ? pairedApproxRandomization(m, toStats(base), toStats(sys), { nSamples: opts.pairedSamples, seed })
    : pairedBootstrap(m, toStats(base), toStats(sys), { nSamples: opts.pairedSamples, seed });
}

function meanReport(
  metric: MetricName,
  name: string,
  values: number[],
  nrefs: number | 'var',
  opts: MetricRunOptions,
  seed: number,
  base?: number[],
): MetricReport {
  const score = values.reduce((a, b) => a + b, 0) / values.length;
  const boot = (opts.bootstrap ?? 0) > 0 ? bootstrapMean(values, { nSamples: opts.bootstrap, seed }) : undefined;
  let formatted = `${name} = ${pyFixed(score, 4)}`;
  if (boot) formatted += ` (μ = ${pyFixed(boot.mean, 4)} ± ${pyFixed(boot.ci, 4)})`;
  return {
    metric,
    name,
    score,
    formatted,
    nrefs,
    n: values.length,
    segments: values.map((score, index) => ({ index, score })),
    bootstrap: boot,
    paired: base ? pairedMean(base, values, opts, seed) : undefined,
  };
}

/**
 * Reads a file's bytes as text in its detected encoding (UTF-8, UTF-8 with BOM, UTF-16 with or without BOM,
 * GB18030/GBK: the data stage's detector, src/core/encoding.ts); bytes invalid in that encoding are refused with
 * file:line. `notes` gets one line when the file is not plain UTF-8, so the CLI can say what it decoded.
 */
function readTextLines(path: string, what: string, notes?: string[]): string[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new LoomError('INPUT_NOT_FOUND', `cannot read ${what} ${path}: ${(e as Error).message}`, {
      file: path,
      cause: e,
    });
  }
  const { encoding, lines } = decodeTextStrict(bytes, path, what);
  if (encoding !== 'utf8' && encoding !== 'utf8-bom')
    notes?.push(`${what} ${path}: read as ${encodingLabel(encoding)}`);
  return lines;
}

/**
 * Reads a one-segment-per-line file. A final newline does not add a segment; '\r\n' endings are accepted; the
 * encoding is detected (readTextLines). Empty files are an input error.
 */
export function readSegments(path: string, role: string, notes?: string[]): string[] {
  const lines = readTextLines(path, `${role} file`, notes);
  if (lines.length === 0) throw new LoomError('METRIC_INPUT', `${role} file is empty`, { file: path });
  return lines;
}

/**
 * Reads a JSONL file of objects (eval datasets, multiple-choice items, retrieval pairs): BOM and CRLF tolerated,
 * blank lines skipped, each row kept with its 1-based line number so later errors can name file and line.
 */
export function readJsonlRows(path: string, what: string): { line: number; value: Record<string, unknown> }[] {
  const out: { line: number; value: Record<string, unknown> }[] = [];
  readTextLines(path, what).forEach((raw, i) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new LoomError('INPUT_MALFORMED', `invalid JSON: ${(e as Error).message}`, {
        file: path,
        line: i + 1,
        hint: 'each line must be one JSON object',
      });
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new LoomError('INPUT_MALFORMED', 'each line must be a JSON object', { file: path, line: i + 1 });
    }
    out.push({ line: i + 1, value: value as Record<string, unknown> });
  });
  if (out.length === 0) throw new LoomError('INPUT_FORMAT', `${what} is empty: ${path}`, { file: path });
  return out;
}

/** Reads hypothesis and reference files and checks that every file has the same number of lines. */
export function readParallel(
  hypPath: string,
  refPaths: readonly string[],
  notes?: string[],
): { hyps: string[]; refs: string[][] } {
  if (refPaths.length === 0) throw new LoomError('METRIC_INPUT', 'at least one --ref file is needed');
  const hyps = readSegments(hypPath, 'hypothesis', notes);
  const refs = refPaths.map((p) => {
    const r = readSegments(p, 'reference', notes);
    if (r.length !== hyps.length) {
      throw new LoomError(
        'METRIC_INPUT',
        `line counts differ: reference ${p} has ${r.length} lines, hypothesis ${hypPath} has ${hyps.length}`,
        { file: p, hint: 'each line is one segment; the files must be aligned line by line' },
      );
    }
    return r;
  });
  return { hyps, refs };
}
