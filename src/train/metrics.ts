import { appendFileSync, existsSync } from 'node:fs';
import { writeFileAtomic } from '../core/atomic.ts';
import { escapeHtml, REPORT_FONT_STACK } from '../core/html.ts';
import { readJsonlSync } from '../core/jsonl.ts';

/** One line of `metrics.jsonl`. Train lines carry loss/lr/grad_norm; eval lines carry eval_loss/eval_ppl. */
export interface MetricRecord {
  step: number;
  epoch: number;
  split: 'train' | 'eval';
  loss?: number;
  lr?: number;
  grad_norm?: number;
  tokens_per_s?: number;
  tokens?: number;
  rss_mb?: number;
  eval_loss?: number;
  eval_ppl?: number;
  time: string;
}

export class MetricsLog {
  constructor(readonly path: string) {}

  append(r: MetricRecord): void {
    appendFileSync(this.path, `${JSON.stringify(r)}\n`);
  }

  read(): MetricRecord[] {
    if (!existsSync(this.path)) return [];
    return readJsonlSync<MetricRecord>(this.path);
  }

  /** After a resume: drop what was logged past the checkpoint, so the file reads like one uninterrupted run. */
  truncateAfter(step: number): void {
    const keep = this.read().filter((r) => r.step <= step);
    writeFileAtomic(this.path, keep.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
}

/** Evaluations after the best one needed before a rise counts as overfitting rather than noise. */
const OVERFIT_EVALS = 3;
/** How far above its best the last validation loss must be (relative), so a noisy plateau is not flagged. */
const OVERFIT_MIN_RISE = 0.01;

/** Validation loss rising while train loss falls: where it started and by how much. */
export interface OverfitFlag {
  /** Step of the best evaluation (where validation loss turned). */
  fromStep: number;
  /** Step of the last evaluation. */
  toStep: number;
  evals: number;
  evalBest: number;
  evalLast: number;
  /** Mean train loss over the logged steps leading up to fromStep and to toStep. */
  trainAtBest: number;
  trainAtLast: number;
}

/**
 * Flags overfitting: at least `minEvals` evaluations after the best validation loss, the last one at least
 * `minRise` (relative) above the best, and train loss lower at the end than at the best evaluation. Train loss is
 * averaged over the logged steps since the previous evaluation, so one noisy batch neither hides nor fakes it.
 * A run whose train loss rises too is diverging, not overfitting, and is not flagged.
 */
export function detectOverfitting(
  records: readonly MetricRecord[],
  minEvals = OVERFIT_EVALS,
  minRise = OVERFIT_MIN_RISE,
): OverfitFlag | undefined {
  const byStep = new Map<number, number>();
  for (const r of records) if (r.split === 'eval' && Number.isFinite(r.eval_loss)) byStep.set(r.step, r.eval_loss!);
  const evals = [...byStep].sort((a, b) => a[0] - b[0]);
  const train = records
    .filter((r) => r.split === 'train' && Number.isFinite(r.loss))
    .map((r) => [r.step, r.loss!] as const)
    .sort((a, b) => a[0] - b[0]);
  if (evals.length < minEvals + 1 || train.length === 0) return undefined;
  let best = 0;
  for (let i = 1; i < evals.length; i++) if (evals[i]![1] < evals[best]![1]) best = i;
  const after = evals.length - 1 - best;
  const [fromStep, evalBest] = evals[best]!;
  const [toStep, evalLast] = evals[evals.length - 1]!;
  if (after < minEvals || evalLast < evalBest * (1 + minRise)) return undefined;
  const trainAt = (i: number): number | undefined => {
    const lo = i > 0 ? evals[i - 1]![0] : Number.NEGATIVE_INFINITY;
    const hi = evals[i]![0];
    let pts = train.filter(([s]) => s > lo && s <= hi);
    if (pts.length === 0) pts = train.filter(([s]) => s <= hi).slice(-1);
    return pts.length ? pts.reduce((a, [, l]) => a + l, 0) / pts.length : undefined;
  };
  const trainAtBest = trainAt(best);
  const trainAtLast = trainAt(evals.length - 1);
  if (trainAtBest === undefined || trainAtLast === undefined || !(trainAtLast < trainAtBest)) return undefined;
  return { fromStep, toStep, evals: after, evalBest, evalLast, trainAtBest, trainAtLast };
}

/** One line for the run summary (English, then zh-CN). */
export function formatOverfit(f: OverfitFlag): string {
  const pct = ((f.evalLast / f.evalBest - 1) * 100).toFixed(1);
  return (
    `overfitting: validation loss rose ${pct} % from its best ${f.evalBest.toFixed(4)} at step ${f.fromStep} to ${f.evalLast.toFixed(4)} at step ${f.toStep} ` +
    `over ${f.evals} evaluations while train loss fell ${f.trainAtBest.toFixed(4)} → ${f.trainAtLast.toFixed(4)}; ` +
    `the best checkpoint is step ${f.fromStep} (set early_stopping_patience, fewer epochs or more data) / ` +
    `过拟合：验证损失自第 ${f.fromStep} 步起上升 ${pct} %，训练损失仍在下降`
  );
}

const niceTicks = (lo: number, hi: number, n: number): number[] =>
  Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));

/**
 * A self-contained HTML page with an inline SVG chart, no scripts or external files: train and eval loss on the
 * left axis, the learning rate on the right axis, labelled axes, and the overfitting stretch shaded when there is one.
 */
export function lossChartHtml(records: readonly MetricRecord[], title: string): string {
  const train = records
    .filter((r) => r.split === 'train' && r.loss !== undefined)
    .map((r) => [r.step, r.loss!] as const);
  const evals = records
    .filter((r) => r.split === 'eval' && r.eval_loss !== undefined)
    .map((r) => [r.step, r.eval_loss!] as const);
  const lrs = records
    .filter((r) => r.split === 'train' && r.lr !== undefined && Number.isFinite(r.lr))
    .map((r) => [r.step, r.lr!] as const);
  const overfit = detectOverfitting(records);
  const W = 820;
  const H = 380;
  const pad = { l: 72, r: 80, t: 20, b: 48 };
  const all = [...train, ...evals];
  const xMax = Math.max(1, ...all.map((p) => p[0]), ...lrs.map((p) => p[0]));
  const ys = all.map((p) => p[1]).filter(Number.isFinite);
  const yMin = ys.length ? Math.min(...ys) : 0;
  const yMax = ys.length ? Math.max(...ys) : 1;
  const span = yMax - yMin || 1;
  const lrMax = Math.max(0, ...lrs.map((p) => p[1])) || 1;
  const sx = (x: number): number => pad.l + (x / xMax) * (W - pad.l - pad.r);
  const sy = (y: number): number => pad.t + (1 - (y - yMin) / span) * (H - pad.t - pad.b);
  const syLr = (y: number): number => pad.t + (1 - y / lrMax) * (H - pad.t - pad.b);
  const line = (
    pts: readonly (readonly [number, number])[],
    color: string,
    cls: string,
    y: (v: number) => number = sy,
    dash = '',
  ): string =>
    pts.length
      ? `<polyline class="${cls}" fill="none" stroke="${color}" stroke-width="1.5"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${pts.map(([a, b]) => `${sx(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"/>` +
        (dash
          ? ''
          : pts
              .map(
                ([a, b]) =>
                  `<circle cx="${sx(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="${pts.length > 60 ? 0 : 2}" fill="${color}"/>`,
              )
              .join(''))
      : '';
  const ticks = niceTicks(yMin, yMax, 5)
    .map(
      (v) =>
        `<line x1="${pad.l}" x2="${W - pad.r}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#eee"/>` +
        `<text x="${pad.l - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${v.toFixed(3)}</text>`,
    )
    .join('');
  const lrTicks = lrs.length
    ? niceTicks(0, lrMax, 5)
        .map(
          (v) =>
            `<text x="${W - pad.r + 6}" y="${(syLr(v) + 4).toFixed(1)}" text-anchor="start" font-size="11" fill="#2ca02c">${v.toExponential(1)}</text>`,
        )
        .join('')
    : '';
  const xt = niceTicks(0, xMax, 5)
    .map(Math.round)
    .map((v) => `<text x="${sx(v).toFixed(1)}" y="${H - pad.b + 16}" text-anchor="middle" font-size="11">${v}</text>`)
    .join('');
  const midY = ((pad.t + H - pad.b) / 2).toFixed(0);
  const band = overfit
    ? `<rect class="overfit" x="${sx(overfit.fromStep).toFixed(1)}" y="${pad.t}" width="${(sx(overfit.toStep) - sx(overfit.fromStep)).toFixed(1)}" height="${H - pad.t - pad.b}" fill="#ff7f0e" fill-opacity="0.12"/>` +
      `<text x="${(sx(overfit.fromStep) + 4).toFixed(1)}" y="${pad.t + 14}" font-size="11" fill="#b35900">overfitting / 过拟合 (step ${overfit.fromStep}→${overfit.toStep})</text>`
    : '';
  const note = overfit ? `<p class="warn">${escapeHtml(formatOverfit(overfit))}</p>` : '';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:${REPORT_FONT_STACK};margin:24px;color:#222}svg text{font-family:${REPORT_FONT_STACK}}.k{display:inline-block;width:12px;height:3px;margin:0 4px 3px 12px}.warn{color:#b35900}</style>
</head><body>
<h2>${escapeHtml(title)}</h2>
<div><span class="k" style="background:#1f77b4"></span>train loss<span class="k" style="background:#d62728"></span>eval loss${lrs.length ? '<span class="k" style="background:#2ca02c"></span>learning rate (right axis)' : ''}</div>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">
<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>${band}${ticks}${lrTicks}${xt}
<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${H - pad.b}" stroke="#999"/>
<line x1="${pad.l}" x2="${W - pad.r}" y1="${H - pad.b}" y2="${H - pad.b}" stroke="#999"/>
${lrs.length ? `<line x1="${W - pad.r}" x2="${W - pad.r}" y1="${pad.t}" y2="${H - pad.b}" stroke="#999"/>` : ''}
<text class="axis-x" x="${((pad.l + W - pad.r) / 2).toFixed(0)}" y="${H - 8}" text-anchor="middle" font-size="12">optimiser step</text>
<text class="axis-y" x="16" y="${midY}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${midY})">loss (cross-entropy per token)</text>
${lrs.length ? `<text class="axis-lr" x="${W - 12}" y="${midY}" text-anchor="middle" font-size="12" fill="#2ca02c" transform="rotate(90 ${W - 12} ${midY})">learning rate</text>` : ''}
${line(lrs, '#2ca02c', 'lr', syLr, '4 3')}${line(train, '#1f77b4', 'train')}${line(evals, '#d62728', 'eval')}
</svg>
<p>${train.length} train points, ${evals.length} eval points. Final train loss ${train.length ? train[train.length - 1]![1].toFixed(4) : 'n/a'}${evals.length ? `, best eval loss ${Math.min(...evals.map((e) => e[1])).toFixed(4)}` : ''}.</p>
${note}</body></html>
`;
}
