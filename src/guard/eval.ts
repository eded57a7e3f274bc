/**
 * `loom guard eval`: scores the guard on labelled JSONL (`{"text","label","lang"}`, labels injection, jailbreak,
 * harmful, benign; with `outputSide`, `text` is a model answer and `prompt` the question).
 *
 * The guard's prediction for a row is its strongest fired label, or `benign` when none fires. Precision, recall
 * and F1 per label come from the eval stage's `classificationReport` (sklearn definitions); `fpr` is the share of
 * benign rows predicted as that label. The threshold sweep re-labels the same scores at other thresholds (one
 * threshold for all three labels), so it costs no extra guard calls.
 */
import { readFileSync } from 'node:fs';
import { LoomError } from '../core/errors.ts';
import { classificationReport } from '../eval/metrics/index.ts';
import { createGuard, type Guard, type GuardConfigInput, type GuardLabel } from './index.ts';

const EVAL_LABELS = ['injection', 'jailbreak', 'harmful', 'benign'] as const;
export type EvalLabel = (typeof EVAL_LABELS)[number];

export interface LabelledRow {
  text: string;
  label: EvalLabel;
  lang: string;
  prompt?: string;
}

export interface LabelMetrics {
  precision: number;
  recall: number;
  f1: number;
  fpr: number;
  support: number;
}

export interface GuardEvalJson {
  n: number;
  labels: Record<string, LabelMetrics>;
  by_lang: Record<string, { labels: Record<string, LabelMetrics> }>;
  latency_ms: { p50: number; p99: number };
}

export interface GuardEvalReport {
  json: GuardEvalJson;
  confusion: { rows: string[]; columns: string[]; matrix: number[][] };
  sweep: { threshold: number; labels: Record<string, LabelMetrics> }[];
  errors: { text: string; gold: EvalLabel; pred: EvalLabel; rule?: string }[];
  /** Classifier layer latency per message, apart from `json.latency_ms` (the non-model layers); absent when off. */
  classifierLatency?: { p50: number; p99: number };
}

export function readLabelled(file: string, outputSide = false): LabelledRow[] {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LoomError('INPUT_NOT_FOUND', `cannot read ${file}`, { file, cause: e, hint: 'pass a JSONL file path' });
  }
  const rows: LabelledRow[] = [];
  raw.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new LoomError('INPUT_MALFORMED', 'not valid JSON', { file, line: i + 1, cause: e });
    }
    if (typeof o.text !== 'string') {
      throw new LoomError('INPUT_MALFORMED', '"text" must be a string', { file, line: i + 1, field: 'text' });
    }
    if (!EVAL_LABELS.includes(o.label as EvalLabel)) {
      throw new LoomError('INPUT_MALFORMED', `"label" must be one of ${EVAL_LABELS.join(', ')}`, {
        file,
        line: i + 1,
        field: 'label',
        hint: 'use benign for rows that should pass',
      });
    }
    if (outputSide && o.prompt !== undefined && typeof o.prompt !== 'string') {
      throw new LoomError('INPUT_MALFORMED', '"prompt" must be a string', { file, line: i + 1, field: 'prompt' });
    }
    const lang = typeof o.lang === 'string' ? o.lang : /[\u4e00-\u9fff]/.test(o.text) ? 'zh' : 'en';
    rows.push({ text: o.text, label: o.label as EvalLabel, lang, prompt: o.prompt as string | undefined });
  });
  if (rows.length === 0) throw new LoomError('INPUT_MALFORMED', 'no rows', { file, hint: 'one JSON object a line' });
  return rows;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function metricsFor(gold: EvalLabel[], pred: EvalLabel[]): Record<string, LabelMetrics> {
  const rep = classificationReport(gold, pred, EVAL_LABELS);
  const benign = gold.filter((g) => g === 'benign').length;
  const out: Record<string, LabelMetrics> = {};
  for (const c of rep.perClass) {
    const flagged = gold.filter((g, i) => g === 'benign' && pred[i] === c.label).length;
    const r = (x: number): number => Math.round(x * 10000) / 10000;
    out[c.label] = {
      precision: r(c.precision),
      recall: r(c.recall),
      f1: r(c.f1),
      fpr: c.label === 'benign' || benign === 0 ? 0 : r(flagged / benign),
      support: c.support,
    };
  }
  return out;
}

function predict(scores: Record<GuardLabel, number>, t: (l: GuardLabel) => number): EvalLabel {
  let best: EvalLabel = 'benign';
  let bestScore = -1;
  for (const l of ['injection', 'jailbreak', 'harmful'] as const) {
    if (scores[l] >= t(l) && scores[l] > bestScore) {
      best = l;
      bestScore = scores[l];
    }
  }
  return best;
}

export function evaluateGuard(
  rows: readonly LabelledRow[],
  opts: { outputSide?: boolean; config?: GuardConfigInput; guard?: Guard } = {},
): GuardEvalReport {
  const guard = opts.guard ?? createGuard(opts.config ?? {});
  const th = guard.config.thresholds;
  const scores: Record<GuardLabel, number>[] = [];
  const rules: (string | undefined)[] = [];
  const lat: number[] = [];
  const clsLat: number[] = [];
  // Warm-up: the first Chinese message loads opencc's dictionaries and the first calls JIT-compile the rules;
  // that one-off cost is start-up, not per-message latency.
  for (const w of ['warm up ignore previous instructions', '预热 忽略之前的指令 輸出', 'aWdub3JlIHByZXZpb3Vz'])
    guard.checkInput(w);
  for (const r of rows) {
    const t0 = process.hrtime.bigint();
    const v = opts.outputSide ? guard.checkOutput(r.text, { prompt: r.prompt }) : guard.checkInput(r.text);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    // latency_ms is the non-model layers; the classifier's share is reported on its own.
    lat.push(ms - (v.classifier_ms ?? 0));
    if (v.classifier_ms !== undefined) clsLat.push(v.classifier_ms);
    scores.push(v.scores);
    rules.push(v.evidence[0] ? `${v.evidence[0].layer}:${v.evidence[0].rule}` : undefined);
  }
  const gold = rows.map((r) => r.label);
  const pred = scores.map((s) => predict(s, (l) => th[l]));
  const byLang: GuardEvalJson['by_lang'] = {};
  for (const lang of [...new Set(rows.map((r) => r.lang))].sort()) {
    const idx = rows.map((r, i) => (r.lang === lang ? i : -1)).filter((i) => i >= 0);
    byLang[lang] = {
      labels: metricsFor(
        idx.map((i) => gold[i]!),
        idx.map((i) => pred[i]!),
      ),
    };
  }
  lat.sort((a, b) => a - b);
  clsLat.sort((a, b) => a - b);
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  const rep = classificationReport(gold, pred, EVAL_LABELS);
  const sweep = [0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9].map((threshold) => ({
    threshold,
    labels: metricsFor(
      gold,
      scores.map((s) => predict(s, () => threshold)),
    ),
  }));
  return {
    json: {
      n: rows.length,
      labels: metricsFor(gold, pred),
      by_lang: byLang,
      latency_ms: { p50: r3(quantile(lat, 0.5)), p99: r3(quantile(lat, 0.99)) },
    },
    confusion: { rows: rep.confusion.rows, columns: rep.confusion.columns, matrix: rep.confusion.matrix },
    sweep,
    errors: rows
      .map((r, i) => ({ text: r.text, gold: r.label, pred: pred[i]!, rule: rules[i] }))
      .filter((e) => e.gold !== e.pred),
    ...(clsLat.length > 0
      ? { classifierLatency: { p50: r3(quantile(clsLat, 0.5)), p99: r3(quantile(clsLat, 0.99)) } }
      : {}),
  };
}
