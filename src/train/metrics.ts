import { appendFileSync, existsSync } from 'node:fs';
import { writeFileAtomic } from '../core/atomic.ts';
import { escapeHtml } from '../core/html.ts';
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

/** A self-contained HTML page with an inline SVG loss chart (train loss, eval loss), no scripts or external files. */
export function lossChartHtml(records: readonly MetricRecord[], title: string): string {
  const train = records
    .filter((r) => r.split === 'train' && r.loss !== undefined)
    .map((r) => [r.step, r.loss!] as const);
  const evals = records
    .filter((r) => r.split === 'eval' && r.eval_loss !== undefined)
    .map((r) => [r.step, r.eval_loss!] as const);
  const W = 760;
  const H = 360;
  const pad = { l: 56, r: 16, t: 20, b: 40 };
  const all = [...train, ...evals];
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const ys = all.map((p) => p[1]).filter(Number.isFinite);
  const yMin = ys.length ? Math.min(...ys) : 0;
  const yMax = ys.length ? Math.max(...ys) : 1;
  const span = yMax - yMin || 1;
  const sx = (x: number): number => pad.l + (x / xMax) * (W - pad.l - pad.r);
  const sy = (y: number): number => pad.t + (1 - (y - yMin) / span) * (H - pad.t - pad.b);
  const line = (pts: readonly (readonly [number, number])[], color: string): string =>
    pts.length
      ? `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>` +
        pts
          .map(
            ([x, y]) =>
              `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="${pts.length > 60 ? 0 : 2}" fill="${color}"/>`,
          )
          .join('')
      : '';
  const ticks = Array.from({ length: 5 }, (_, i) => yMin + (span * i) / 4)
    .map(
      (v) =>
        `<line x1="${pad.l}" x2="${W - pad.r}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#eee"/>` +
        `<text x="${pad.l - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${v.toFixed(3)}</text>`,
    )
    .join('');
  const xt = Array.from({ length: 5 }, (_, i) => Math.round((xMax * i) / 4))
    .map((v) => `<text x="${sx(v).toFixed(1)}" y="${H - pad.b + 16}" text-anchor="middle" font-size="11">${v}</text>`)
    .join('');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}.k{display:inline-block;width:12px;height:3px;margin:0 4px 3px 12px}</style>
</head><body>
<h2>${escapeHtml(title)}</h2>
<div><span class="k" style="background:#1f77b4"></span>train loss<span class="k" style="background:#d62728"></span>eval loss</div>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">
<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>${ticks}${xt}
<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${H - pad.b}" stroke="#999"/>
<line x1="${pad.l}" x2="${W - pad.r}" y1="${H - pad.b}" y2="${H - pad.b}" stroke="#999"/>
<text x="${(W / 2).toFixed(0)}" y="${H - 6}" text-anchor="middle" font-size="12">optimiser step</text>
${line(train, '#1f77b4')}${line(evals, '#d62728')}
</svg>
<p>${train.length} train points, ${evals.length} eval points. Final train loss ${train.length ? train[train.length - 1]![1].toFixed(4) : 'n/a'}${evals.length ? `, best eval loss ${Math.min(...evals.map((e) => e[1])).toFixed(4)}` : ''}.</p>
</body></html>
`;
}
