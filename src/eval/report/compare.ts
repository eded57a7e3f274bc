import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../../core/errors.ts';
import { meanMetric, pairedBootstrap, scoreMetric } from '../metrics/index.ts';
import type { RunResult, TaskRunResult } from '../suite/results.ts';
import { metricOptions, refStreams, resolveTokenize } from '../suite/scoring.ts';
import { esc, fmt, page } from './html.ts';

/** One metric of one task, baseline system vs candidate system, with a paired significance test. */
export interface ComparisonRow {
  task: string;
  baseline: string;
  system: string;
  metric: string;
  baselineScore: number;
  systemScore: number;
  delta: number;
  /** Paired bootstrap p-value (1000 resamples) over the items both systems answered; undefined for counts. */
  pValue?: number;
  n: number;
}

export function loadRun(pathOrDir: string): RunResult {
  const file = existsSync(pathOrDir) && statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'results.json') : pathOrDir;
  if (!existsSync(file)) {
    throw new LoomError('INPUT_NOT_FOUND', `no eval results at ${pathOrDir}`, {
      file,
      hint: 'pass a run folder written by `loom eval run` (it holds results.json)',
    });
  }
  return JSON.parse(readFileSync(file, 'utf8')) as RunResult;
}

function systemName(run: RunResult, t: TaskRunResult, withRun: boolean): string {
  return `${withRun ? `${run.runId}:` : ''}${t.model}/${t.prompt}`;
}

/** Aligns two systems' examples by item id (only items both answered without error). */
function aligned(a: TaskRunResult, b: TaskRunResult) {
  const byId = new Map(b.examples.filter((e) => !e.error).map((e) => [e.id, e]));
  const pairs = a.examples.filter((e) => !e.error && byId.has(e.id)).map((e) => [e, byId.get(e.id)!] as const);
  return pairs;
}

/**
 * A zero difference is never evidence of one: p = 1. sacrebleu's formula gives 1/(n+1) when every resample
 * difference is also 0 (identical systems, or two systems that both score 0 on every item), which reads as
 * "highly significant" for no difference at all.
 */
function pOf(delta: number, p: number, identical: boolean): number {
  return identical || delta === 0 ? 1 : p;
}

function compareTask(a: TaskRunResult, b: TaskRunResult, nameA: string, nameB: string, seed: number): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  const base = { task: a.task, baseline: nameA, system: nameB };
  if (a.kind === 'conversation') {
    const bById = new Map((b.conversations ?? []).map((c) => [c.scenario, c]));
    const pairs = (a.conversations ?? []).filter((c) => bById.has(c.scenario)).map((c) => [c, bById.get(c.scenario)!]);
    if (pairs.length === 0) return rows;
    for (const [metric, f] of [
      ['pass_rate', (c: { passed: boolean }) => (c.passed ? 1 : 0)],
      ['goal_success', (c: { goalAchieved: boolean }) => (c.goalAchieved ? 1 : 0)],
    ] as const) {
      const r = pairedBootstrap(
        meanMetric(metric),
        pairs.map(([x]) => [f(x!), 1]),
        pairs.map(([, y]) => [f(y!), 1]),
        { seed },
      );
      const same = pairs.every(([x, y]) => f(x!) === f(y!));
      rows.push({
        ...base,
        metric,
        baselineScore: r.baseline,
        systemScore: r.system,
        delta: r.delta,
        pValue: pOf(r.delta, r.pValue, same),
        n: pairs.length,
      });
    }
    const va = pairs.reduce((s, [x]) => s + x!.policyViolations.length, 0);
    const vb = pairs.reduce((s, [, y]) => s + y!.policyViolations.length, 0);
    rows.push({
      ...base,
      metric: 'policy_violations',
      baselineScore: va,
      systemScore: vb,
      delta: vb - va,
      n: pairs.length,
    });
    return rows;
  }
  const pairs = aligned(a, b);
  if (pairs.length === 0) return rows;
  if (a.kind === 'generation') {
    const metrics = Object.keys(a.summary).filter((m) => m in b.summary);
    const refs = refStreams(pairs.map(([x]) => x));
    const tok = resolveTokenize(
      (a.scoring as 'zh' | '13a' | 'intl' | 'char' | undefined) ?? 'auto',
      pairs.map(([x]) => x.references),
    );
    for (const m of metrics) {
      const gm = m.startsWith('rouge') ? 'rouge' : (m as 'bleu' | 'chrf' | 'chrf++' | 'em' | 'f1');
      const { name, opts } = metricOptions(gm, tok, { samples: 0, seed });
      const rougeType = m.startsWith('rouge') ? m : undefined;
      const r = scoreMetric(
        name,
        pairs.map(([, y]) => y.hypothesis),
        refs,
        {
          ...opts,
          rouge: rougeType ? { ...opts.rouge, types: [rougeType] } : opts.rouge,
          baseline: pairs.map(([x]) => x.hypothesis),
          pairedTest: 'bs',
        },
      );
      const p = r.paired!;
      const same = pairs.every(([x, y]) => x.hypothesis === y.hypothesis);
      rows.push({
        ...base,
        metric: m,
        baselineScore: p.baseline,
        systemScore: p.system,
        delta: p.delta,
        pValue: pOf(p.delta, p.pValue, same),
        n: pairs.length,
      });
    }
    return rows;
  }
  const key = a.kind === 'classification' ? 'correct' : 'acc';
  const r = pairedBootstrap(
    meanMetric('accuracy'),
    pairs.map(([x]) => [x.scores[key] ?? 0, 1]),
    pairs.map(([, y]) => [y.scores[key] ?? 0, 1]),
    { seed },
  );
  const same = pairs.every(([x, y]) => (x.scores[key] ?? 0) === (y.scores[key] ?? 0));
  rows.push({
    ...base,
    metric: 'accuracy',
    baselineScore: r.baseline,
    systemScore: r.system,
    delta: r.delta,
    pValue: pOf(r.delta, r.pValue, same),
    n: pairs.length,
  });
  return rows;
}

/**
 * Compares systems. With two runs: each task/model/prompt of run A against the same one in run B (or, when each run
 * has a single model, task by task). With one run and a baseline model label: every other model against it.
 */
export function compareRuns(
  a: RunResult,
  b: RunResult | undefined,
  opts: { baseline?: string; seed?: number } = {},
): ComparisonRow[] {
  const seed = opts.seed ?? 12345;
  const rows: ComparisonRow[] = [];
  if (!b) {
    const baseline = opts.baseline ?? a.models[0]?.id;
    // `model` compares other models under the same prompt; `model/prompt@version` compares every other system
    // (other prompt versions of the same model included) with that one, so prompt versions are compared too.
    const bySystem = baseline?.includes('/') ?? false;
    const isBase = (t: TaskRunResult) => (bySystem ? `${t.model}/${t.prompt}` === baseline : t.model === baseline);
    for (const t of a.tasks.filter(isBase)) {
      for (const u of a.tasks.filter((u) => u.task === t.task && !isBase(u) && (bySystem || u.prompt === t.prompt))) {
        rows.push(...compareTask(t, u, systemName(a, t, false), systemName(a, u, false), seed));
      }
    }
    if (rows.length === 0) {
      throw new LoomError('METRIC_INPUT', `nothing to compare against baseline "${baseline}" in run ${a.runId}`, {
        hint: `baselines in the run: ${[...new Set(a.tasks.flatMap((t) => [t.model, `${t.model}/${t.prompt}`]))].join(', ')}`,
      });
    }
    return rows;
  }
  const singleModel =
    new Set(a.tasks.map((t) => t.model)).size === 1 && new Set(b.tasks.map((t) => t.model)).size === 1;
  // A prompt change between runs (v1 in A, v2 in B) is compared too when each run used a single prompt.
  const singlePrompt =
    new Set(a.tasks.map((t) => t.prompt)).size === 1 && new Set(b.tasks.map((t) => t.prompt)).size === 1;
  for (const t of a.tasks) {
    const u = b.tasks.find(
      (u) => u.task === t.task && (singlePrompt || u.prompt === t.prompt) && (singleModel || u.model === t.model),
    );
    if (u) rows.push(...compareTask(t, u, systemName(a, t, true), systemName(b, u, true), seed));
  }
  if (rows.length === 0) {
    throw new LoomError('METRIC_INPUT', `runs ${a.runId} and ${b.runId} share no task/model/prompt to compare`);
  }
  return rows;
}

export function formatComparison(rows: ComparisonRow[]): string {
  const lines = ['task\tmetric\tbaseline\tsystem\tbase\tsys\tdelta\tp\tn'];
  for (const r of rows) {
    lines.push(
      [
        r.task,
        r.metric,
        r.baseline,
        r.system,
        fmt(r.baselineScore, 4),
        fmt(r.systemScore, 4),
        `${r.delta >= 0 ? '+' : ''}${fmt(r.delta, 4)}`,
        r.pValue === undefined ? '–' : fmt(r.pValue, 4),
        r.n,
      ].join('\t'),
    );
  }
  return lines.join('\n');
}

export function renderComparison(rows: ComparisonRow[], title: string): string {
  let body = `<h1>${esc(title)}</h1><p class="muted">Paired bootstrap over the items both systems answered (1000 resamples); p < 0.05 marked ★.</p><table><tr><th>task</th><th>metric</th><th>baseline</th><th>system</th><th>baseline score</th><th>system score</th><th>Δ</th><th>p</th><th>n</th></tr>`;
  for (const r of rows) {
    const better = r.metric === 'policy_violations' ? r.delta < 0 : r.delta > 0;
    const sig = r.pValue !== undefined && r.pValue < 0.05 ? ' ★' : '';
    body += `<tr><td>${esc(r.task)}</td><td>${esc(r.metric)}</td><td>${esc(r.baseline)}</td><td>${esc(r.system)}</td><td>${fmt(r.baselineScore, 4)}</td><td>${fmt(r.systemScore, 4)}</td><td class="${r.delta === 0 ? '' : better ? 'pos' : 'neg'}">${r.delta >= 0 ? '+' : ''}${fmt(r.delta, 4)}${sig}</td><td>${r.pValue === undefined ? '–' : fmt(r.pValue, 4)}</td><td>${r.n}</td></tr>`;
  }
  return page(title, `${body}</table>`);
}
