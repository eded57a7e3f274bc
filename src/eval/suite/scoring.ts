import type { TaskSpec } from '../../config/eval.ts';
import {
  type BootstrapResult,
  bootstrapMean,
  classificationReport,
  type MetricReport,
  type MetricRunOptions,
  scoreMetric,
} from '../metrics/index.ts';
import type { ConversationResult } from '../simulate/conversation.ts';
import type { ExampleResult, MetricSummary, TaskRunResult } from './results.ts';

type GenerationMetric = Extract<TaskSpec, { kind: 'generation' }>['metrics'][number];
type Tokenize = Extract<TaskSpec, { kind: 'generation' }>['tokenize'];

const HAN = /\p{Script=Han}/u;

/** `auto`: Chinese references get sacrebleu's `zh` BLEU tokenizer and character ROUGE; others 13a and default. */
export function resolveTokenize(tokenize: Tokenize, references: string[][]): Exclude<Tokenize, 'auto'> {
  if (tokenize !== 'auto') return tokenize;
  const zh = references.filter((r) => HAN.test(r[0] ?? '')).length;
  return zh * 2 >= references.length ? 'zh' : '13a';
}

/** Reference streams as sacrebleu wants them: refs[k][i], null where item i has fewer than k+1 references. */
export function refStreams(examples: { references: string[] }[]): (string | null)[][] {
  const k = Math.max(1, ...examples.map((e) => e.references.length));
  return Array.from({ length: k }, (_, j) => examples.map((e) => e.references[j] ?? null));
}

export function metricOptions(
  metric: GenerationMetric,
  tok: Exclude<Tokenize, 'auto'>,
  boot: { samples: number; seed: number },
): { name: string; opts: MetricRunOptions } {
  const base = { bootstrap: boot.samples, seed: boot.seed };
  switch (metric) {
    case 'bleu':
      return { name: 'bleu', opts: { ...base, bleu: { tokenize: tok } } };
    case 'chrf':
      return { name: 'chrf', opts: base };
    case 'chrf++':
      return { name: 'chrf', opts: { ...base, chrf: { wordOrder: 2 } } };
    case 'rouge':
      return {
        name: 'rouge',
        opts: { ...base, rouge: { tokenizer: tok === 'zh' || tok === 'char' ? 'char' : 'default' } },
      };
    case 'em':
      return { name: 'em', opts: base };
    case 'f1':
      return { name: 'f1', opts: base };
  }
}

function ciOf(r: MetricReport, key?: string): [number, number] | undefined {
  const b = r.bootstrap;
  if (!b) return undefined;
  if ('low' in b && typeof (b as BootstrapResult).low === 'number') {
    return [(b as BootstrapResult).low, (b as BootstrapResult).high];
  }
  const agg = (b as Record<string, { low: { fmeasure: number }; high: { fmeasure: number } }>)[key ?? ''];
  return agg ? [agg.low.fmeasure, agg.high.fmeasure] : undefined;
}

/** Corpus scores with bootstrap CIs, and per-example (sentence-level) scores for the report's worst-examples view. */
export function scoreGeneration(
  examples: ExampleResult[],
  metrics: GenerationMetric[],
  tokenize: Tokenize,
  boot: { samples: number; seed: number },
): Pick<TaskRunResult, 'summary' | 'scoring'> {
  const summary: Record<string, MetricSummary> = {};
  if (examples.length === 0) return { summary, scoring: tokenize };
  const tok = resolveTokenize(
    tokenize,
    examples.map((e) => e.references),
  );
  const hyps = examples.map((e) => e.hypothesis);
  const refs = refStreams(examples);
  for (const metric of metrics) {
    const { name, opts } = metricOptions(metric, tok, boot);
    const r = scoreMetric(name, hyps, refs, opts);
    if (metric === 'rouge') {
      for (const t of ['rouge1', 'rouge2', 'rougeL']) {
        const d = (r.detail as Record<string, { fmeasure: number }>)[t]!;
        summary[t] = { score: d.fmeasure, ci: ciOf(r, t) };
      }
      r.segments.forEach((s, i) => {
        examples[i]!.scores.rougeL = s.score;
      });
    } else {
      summary[metric] = {
        score: r.score,
        ci: ciOf(r),
        text: r.signature ? `${r.formatted} | ${r.signature}` : r.formatted,
      };
      r.segments.forEach((s, i) => {
        examples[i]!.scores[metric] = s.score;
      });
    }
  }
  return { summary, scoring: tok };
}

export function scoreClassification(
  examples: ExampleResult[],
  labels: string[],
  boot: { samples: number; seed: number },
): Pick<TaskRunResult, 'summary' | 'confusion'> {
  if (examples.length === 0) return { summary: {} };
  const gold = examples.map((e) => e.references[0]!);
  const pred = examples.map((e) => (labels.includes(e.hypothesis) ? e.hypothesis : null));
  const rep = classificationReport(gold, pred, labels);
  const correct = examples.map((_e, i) => (pred[i] === gold[i] ? 1 : 0));
  examples.forEach((e, i) => {
    e.scores.correct = correct[i]!;
  });
  const acc = bootstrapMean(correct, { nSamples: boot.samples, seed: boot.seed });
  const summary: Record<string, MetricSummary> = {
    accuracy: { score: rep.accuracy, ci: [acc.low, acc.high] },
    macro_f1: { score: rep.macro.f1 },
    micro_f1: { score: rep.micro.f1 },
    weighted_f1: { score: rep.weighted.f1 },
  };
  for (const c of rep.perClass) summary[`f1[${c.label}]`] = { score: c.f1 };
  return { summary, confusion: { labels: rep.confusion.columns, matrix: rep.confusion.matrix } };
}

/** Rates over scenarios with bootstrap CIs (seeded like the other metrics), and the policy-violation count. */
export function conversationSummary(
  convs: ConversationResult[],
  boot: { samples: number; seed: number } = { samples: 1000, seed: 12345 },
): Record<string, MetricSummary> {
  if (convs.length === 0) return {};
  const rate = (xs: number[]): MetricSummary => {
    const b = bootstrapMean(xs, { nSamples: boot.samples, seed: boot.seed });
    return { score: b.score, ci: [b.low, b.high] };
  };
  const resolved = convs.filter((c) => c.turnsToResolution !== undefined);
  return {
    pass_rate: rate(convs.map((c) => (c.passed ? 1 : 0))),
    goal_success: rate(convs.map((c) => (c.goalAchieved ? 1 : 0))),
    turns_to_resolution: {
      score: resolved.length
        ? resolved.reduce((a, c) => a + (c.turnsToResolution ?? 0), 0) / resolved.length
        : Number.NaN,
    },
    policy_violations: { score: convs.reduce((a, c) => a + c.policyViolations.length, 0) },
  };
}
