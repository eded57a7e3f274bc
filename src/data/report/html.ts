/**
 * Renders a DataReport as one self-contained HTML page: inline CSS, charts as inline SVG generated here, no
 * scripts, fonts or images from anywhere else (it must open offline and be safe to attach to a ticket).
 */
import { escapeHtml, REPORT_FONT_STACK } from '../../core/html.ts';
import type { DataReport, Histogram } from './stats.ts';

export { escapeHtml };

const PALETTE = [
  '#4c78a8',
  '#f58518',
  '#54a24b',
  '#e45756',
  '#72b7b2',
  '#eeca3b',
  '#b279a2',
  '#ff9da6',
  '#9d755d',
  '#bab0ac',
];

/** Horizontal bars, one per item, with the value at the end. */
export function barChart(items: [string, number][], title: string, color = PALETTE[0]!): string {
  if (items.length === 0) return `<p class="muted">${escapeHtml(title)}: none</p>`;
  const shown = items.slice(0, 30);
  const labelW = Math.min(260, 12 + Math.max(...shown.map(([k]) => textWidth(k))));
  const barW = 420;
  const rowH = 22;
  const h = shown.length * rowH + 28;
  const max = Math.max(1, ...shown.map(([, v]) => v));
  const rows = shown
    .map(([k, v], i) => {
      const y = 24 + i * rowH;
      const w = Math.max(1, Math.round((v / max) * barW));
      return (
        `<text x="${labelW - 6}" y="${y + 14}" text-anchor="end">${escapeHtml(clip(k, 38))}</text>` +
        `<rect x="${labelW}" y="${y + 3}" width="${w}" height="${rowH - 6}" fill="${color}"><title>${escapeHtml(k)}: ${v}</title></rect>` +
        `<text x="${labelW + w + 4}" y="${y + 14}">${v}</text>`
      );
    })
    .join('');
  const more = items.length > shown.length ? `<p class="muted">… ${items.length - shown.length} more</p>` : '';
  return (
    `<svg class="chart" role="img" aria-label="${escapeHtml(title)}" width="${labelW + barW + 60}" height="${h}">` +
    `<text x="0" y="14" class="t">${escapeHtml(title)}</text>${rows}</svg>${more}`
  );
}

/** Vertical histogram with bucket labels and summary statistics under it. */
export function histogramChart(h: Histogram, title: string, unit: string, color = PALETTE[2]!): string {
  if (h.n === 0) return `<p class="muted">${escapeHtml(title)}: no rows</p>`;
  // Drop empty buckets at the top end so the chart is not mostly blank.
  let last = h.counts.length - 1;
  while (last > 0 && h.counts[last] === 0) last--;
  const counts = h.counts.slice(0, last + 1);
  const colW = 58;
  const chartH = 160;
  const w = counts.length * colW + 50;
  const max = Math.max(1, ...counts);
  const bars = counts
    .map((c, i) => {
      const bh = Math.round((c / max) * chartH);
      const x = 40 + i * colW;
      const lo = h.edges[i]!;
      const hi = h.edges[i + 1];
      const label = hi === undefined ? `≥${short(lo)}` : `${short(lo)}–${short(hi)}`;
      return (
        `<rect x="${x}" y="${24 + chartH - bh}" width="${colW - 6}" height="${bh}" fill="${color}"><title>${label} ${unit}: ${c}</title></rect>` +
        `<text x="${x + (colW - 6) / 2}" y="${20 + chartH - bh}" text-anchor="middle" class="s">${c || ''}</text>` +
        `<text x="${x + (colW - 6) / 2}" y="${40 + chartH}" text-anchor="middle" class="s">${label}</text>`
      );
    })
    .join('');
  return (
    `<svg class="chart" role="img" aria-label="${escapeHtml(title)}" width="${w}" height="${chartH + 50}">` +
    `<text x="0" y="14" class="t">${escapeHtml(title)}</text>` +
    `<line x1="36" y1="${24 + chartH}" x2="${w}" y2="${24 + chartH}" stroke="#999"/>${bars}</svg>` +
    `<p class="muted">n=${h.n} · min ${h.min} · mean ${h.mean} · p50 ${h.p50} · p90 ${h.p90} · p99 ${h.p99} · max ${h.max} ${escapeHtml(unit)}</p>`
  );
}

function short(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024}k` : String(n);
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Rough pixel width of a label (CJK glyphs are about twice as wide). */
function textWidth(s: string): number {
  let w = 0;
  for (const ch of clip(s, 38)) w += ch.charCodeAt(0) > 0x2e80 ? 13 : 7;
  return w;
}

function table(head: string[], rows: (string | number)[][]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows
    .map((r) => `<tr>${r.map((c) => `<td>${typeof c === 'number' ? c : escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('');
  return `<table><thead><tr>${th}</tr></thead><tbody>${tr}</tbody></table>`;
}

export function renderReportHtml(r: DataReport): string {
  const s: string[] = [];
  const t = r.totals;
  s.push(
    `<h1>${escapeHtml(r.title)}</h1>`,
    `<p class="muted">created ${escapeHtml(r.created)}${r.duration_s !== undefined ? ` · ${r.duration_s.toFixed(1)} s` : ''}${r.tokenizer ? ` · tokenizer ${escapeHtml(r.tokenizer)}` : ''}</p>`,
    '<div class="cards">',
    card('input rows', t.input_rows),
    card('output rows', t.output_rows),
    card('dropped', t.dropped),
    card('changed', t.changed),
    card('malformed', t.malformed),
    card('duplicates removed', r.duplicates.removed),
    '</div>',
  );
  if (r.steps.length) {
    s.push('<h2>Steps</h2>');
    s.push(
      barChart(
        r.steps.map((x) => [x.step, x.out]),
        'rows out of each step',
      ),
    );
    const rows: (string | number)[][] = [];
    for (const x of r.steps) {
      const reasons = [
        ...Object.entries(x.dropped).map(([k, v]) => `dropped ${k}: ${v}`),
        ...Object.entries(x.changed).map(([k, v]) => `changed ${k}: ${v}`),
      ];
      rows.push([x.step, x.in, x.out, reasons.join('; ') || '—']);
    }
    s.push(table(['step', 'in', 'out', 'reasons'], rows));
  }
  if (Object.keys(r.splits).length) {
    s.push('<h2>Splits</h2>', barChart(Object.entries(r.splits), 'rows per split', PALETTE[4]));
    const sl = r.split_labels;
    if (sl && Object.values(sl).some((x) => Object.keys(x).length)) {
      const names = Object.keys(r.splits);
      const labels = [...new Set(Object.values(sl).flatMap((x) => Object.keys(x)))].sort();
      s.push(
        table(
          ['label', ...names],
          labels.map((l) => [l, ...names.map((n) => sl[n]?.[l] ?? 0)]),
        ),
      );
    }
  }
  const o = r.output;
  s.push('<h2>Output data</h2>');
  s.push(table(['kind', 'rows'], Object.entries(o.kinds)));
  s.push(histogramChart(o.chars, 'length (characters)', 'chars'));
  if (o.tokens) s.push(histogramChart(o.tokens, 'length (tokens)', 'tokens', PALETTE[1]));
  if (o.turns) s.push(histogramChart(o.turns, 'turns per conversation (without system)', 'turns', PALETTE[6]));
  s.push(barChart(Object.entries(o.languages), 'language mix', PALETTE[5]));
  if (Object.keys(o.labels).length) s.push(barChart(Object.entries(o.labels), 'label distribution', PALETTE[3]));
  s.push('<h2>PII</h2>');
  s.push(
    Object.keys(r.pii).length
      ? barChart(Object.entries(r.pii), 'PII found (by type)', PALETTE[3])
      : '<p class="muted">no PII counted</p>',
  );
  s.push('<h2>Duplicate clusters</h2>');
  s.push(`<p>${r.duplicates.removed} rows removed in ${r.duplicates.clusters} clusters.</p>`);
  const mem = r.near_dedup_memory;
  if (mem) {
    const actual = mem.actual_bytes !== undefined ? `; the index held ${(mem.actual_bytes / 1024).toFixed(1)} KiB` : '';
    s.push(`<p class="muted">Near-dedup index memory: estimated up front ${escapeHtml(mem.estimate)}${actual}.</p>`);
  }
  for (const c of r.duplicates.examples) {
    s.push(
      '<div class="dup">',
      `<div><b>kept</b> <code>${escapeHtml(c.kept_id)}</code>: ${escapeHtml(c.kept_text ?? '(text not kept)')}</div>`,
      ...c.duplicates.map(
        (d) =>
          `<div class="rm"><b>removed</b> <code>${escapeHtml(d.source)}</code> (${escapeHtml(d.reason)}): ${escapeHtml(d.text)}</div>`,
      ),
      '</div>',
    );
  }
  if (Object.keys(r.outputs).length) {
    s.push('<h2>Files</h2>', table(['output', 'path'], Object.entries(r.outputs)));
  }
  if (r.inputs.length)
    s.push('<h2>Inputs</h2>', `<ul>${r.inputs.map((i) => `<li><code>${escapeHtml(i)}</code></li>`).join('')}</ul>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(r.title)}</title>
<style>
body{font:14px/1.45 ${REPORT_FONT_STACK};margin:24px auto;max-width:1000px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#777;font-size:12px}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}.card b{display:block;font-size:20px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}svg.chart{display:block;margin:10px 0;font-size:12px}svg .t{font-weight:600;font-size:13px}svg .s{font-size:10px}
.dup{border-left:3px solid #4c78a8;padding:4px 10px;margin:8px 0;background:#fafafa}.rm{color:#555;margin-left:12px}
code{font-size:12px;background:#f3f3f3;padding:0 3px}
</style></head><body>
${s.join('\n')}
</body></html>
`;
}

function card(label: string, v: number): string {
  return `<div class="card"><b>${v}</b>${escapeHtml(label)}</div>`;
}
