import type { ConversationResult } from '../simulate/conversation.ts';
import { type MetricSummary, type RunResult, type TaskRunResult, UNREACHABLE } from '../suite/results.ts';

/** Self-contained HTML (inline CSS, no scripts from anywhere): opens from disk, mails as one file. */

import { escapeHtml as esc, REPORT_FONT_STACK } from '../../core/html.ts';
import { priceLabel } from '../../providers/presets.ts';

export { esc };

export function fmt(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}

function fmtSummary(m: MetricSummary | undefined): string {
  if (!m) return '–';
  const ci = m.ci ? ` <span class="ci">[${fmt(m.ci[0])}, ${fmt(m.ci[1])}]</span>` : '';
  return `${fmt(m.score)}${ci}`;
}

export const reportCss = `
body{font:14px/1.45 ${REPORT_FONT_STACK};margin:24px;color:#1d2330;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #dde}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d8dbe3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f8}.ci{color:#667;font-size:12px}.pass{color:#17803d}.fail{color:#c0262d}.err{color:#a15c00}
.muted{color:#667}pre{white-space:pre-wrap;margin:0;font:13px/1.4 ui-monospace,Menlo,Consolas,monospace}
details{margin:4px 0}summary{cursor:pointer}.pos{color:#17803d}.neg{color:#c0262d}
`;

function metricNames(tasks: TaskRunResult[]): string[] {
  return [...new Set(tasks.flatMap((t) => Object.keys(t.summary)))];
}

function summaryTable(run: RunResult): string {
  const byTask = new Map<string, TaskRunResult[]>();
  for (const t of run.tasks) byTask.set(t.task, [...(byTask.get(t.task) ?? []), t]);
  let html = '';
  for (const [task, rows] of byTask) {
    const metrics = metricNames(rows);
    html += `<h3>${esc(task)} <span class="muted">(${esc(rows[0]!.kind)})</span></h3><table><tr><th>model</th><th>prompt</th>`;
    html +=
      (metrics.length ? metrics : ['score']).map((m) => `<th>${esc(m)}</th>`).join('') +
      '<th>items</th><th>errors</th></tr>';
    for (const r of rows) {
      const n = r.conversations?.length ?? r.examples.length;
      html += `<tr><td>${esc(r.model)}</td><td>${esc(r.prompt)}</td>`;
      if (r.unreachable) {
        html += `<td colspan="${Math.max(1, metrics.length)}" class="err" title="${esc(r.unreachable)}">${UNREACHABLE}</td><td>${n}</td><td class="err">${r.errors.length}</td></tr>`;
        continue;
      }
      html += metrics
        .map((m) => `<td>${m === 'policy_violations' ? fmt(r.summary[m]?.score, 0) : fmtSummary(r.summary[m])}</td>`)
        .join('');
      html += `<td>${n}</td><td class="${r.errors.length ? 'err' : ''}">${r.errors.length}</td></tr>`;
    }
    html += '</table>';
  }
  return html;
}

function confusionTable(t: TaskRunResult): string {
  if (!t.confusion) return '';
  const max = Math.max(1, ...t.confusion.matrix.flat());
  let h = `<details open><summary>confusion matrix — ${esc(t.model)} / ${esc(t.prompt)} (rows: gold, columns: predicted)</summary><table><tr><th></th>`;
  h += t.confusion.labels.map((l) => `<th>${esc(l)}</th>`).join('') + '</tr>';
  t.confusion.matrix.forEach((row, i) => {
    h += `<tr><th>${esc(t.confusion!.labels[i]!)}</th>`;
    h += row
      .map((v, j) => {
        const a = (v / max) * 0.85;
        const col = i === j ? `rgba(23,128,61,${a})` : `rgba(192,38,45,${a})`;
        return `<td style="background:${v ? col : 'transparent'}">${v}</td>`;
      })
      .join('');
    h += '</tr>';
  });
  return `${h}</table></details>`;
}

/** The example score used to rank "worst examples": the task's first per-example metric. */
function primaryScore(t: TaskRunResult): string | undefined {
  return Object.keys(t.examples.find((e) => Object.keys(e.scores).length)?.scores ?? {})[0];
}

function examplesView(t: TaskRunResult, limitWorst = 5): string {
  if (t.examples.length === 0) return '';
  const key = primaryScore(t);
  let h = '';
  if (key) {
    const ok = t.examples.filter((e) => !e.error);
    if (key === 'correct' || key === 'acc') {
      // right/wrong scores: list every wrong answer rather than the first few of many ties
      const wrong = ok.filter((e) => (e.scores[key] ?? 0) === 0);
      h += `<details open><summary>${wrong.length} wrong of ${ok.length} — ${esc(t.model)} / ${esc(t.prompt)}</summary>`;
      h += `${exampleRows(wrong)}</details>`;
    } else {
      const worst = [...ok].sort((a, b) => (a.scores[key] ?? 0) - (b.scores[key] ?? 0));
      h += `<details><summary>worst ${Math.min(limitWorst, worst.length)} by ${esc(key)} — ${esc(t.model)} / ${esc(t.prompt)}</summary>`;
      h += `${exampleRows(worst.slice(0, limitWorst))}</details>`;
    }
  }
  h += `<details><summary>all ${t.examples.length} examples — ${esc(t.model)} / ${esc(t.prompt)}</summary>${exampleRows(t.examples)}</details>`;
  return h;
}

function exampleRows(ex: TaskRunResult['examples']): string {
  let h = '<table><tr><th>id</th><th>input</th><th>hypothesis</th><th>reference</th><th>scores</th></tr>';
  for (const e of ex) {
    const scores = Object.entries(e.scores)
      .map(([k, v]) => `${esc(k)} ${fmt(v)}`)
      .join('<br>');
    h += `<tr><td>${esc(e.id)}</td><td><pre>${esc(e.input)}</pre></td><td><pre>${esc(e.hypothesis)}</pre>${
      e.error ? `<div class="err">${esc(e.error)}</div>` : ''
    }</td><td><pre>${esc(e.references.join('\n—\n'))}</pre></td><td>${scores}</td></tr>`;
  }
  return `${h}</table>`;
}

function conversationView(c: ConversationResult): string {
  const mark = c.passed ? '<span class="pass">✔ pass</span>' : '<span class="fail">✘ fail</span>';
  let h = `<details><summary>${mark} ${esc(c.scenario)} ${c.title ? `— ${esc(c.title)}` : ''} <span class="muted">goal ${
    c.goalAchieved ? `met at turn ${c.turnsToResolution ?? '–'}` : 'not met'
  }, ${c.policyViolations.length} policy violations</span></summary><table>`;
  for (const t of c.turns) {
    const checks = t.checks
      .map(
        (k) =>
          `<div class="${k.error ? 'err' : k.pass ? 'pass' : 'fail'}">${k.pass ? '✔' : '✘'} ${esc(k.label)}${
            k.score !== undefined ? ` (score ${k.score})` : ''
          }${k.detail ? ` <span class="muted">${esc(k.detail)}</span>` : ''}${k.error ? ` ${esc(k.error)}` : ''}</div>`,
      )
      .join('');
    const goal = (t.goal ?? [])
      .map((k) => `<div class="muted">goal ${k.pass ? '✔' : '✘'} ${esc(k.label)}</div>`)
      .join('');
    h += `<tr><td>${t.turn}</td><td><b>user</b><pre>${esc(t.user)}</pre><b>assistant</b><pre>${esc(t.assistant)}</pre></td><td>${checks}${goal}</td></tr>`;
  }
  for (const k of c.conversationChecks) {
    h += `<tr><td>all</td><td class="muted">whole conversation</td><td class="${k.pass ? 'pass' : 'fail'}">${k.pass ? '✔' : '✘'} ${esc(k.label)}${
      k.score !== undefined ? ` (score ${k.score})` : ''
    }${k.error ? ` <span class="err">${esc(k.error)}</span>` : ''}</td></tr>`;
  }
  for (const e of c.errors) h += `<tr><td colspan="3" class="err">${esc(e)}</td></tr>`;
  return `${h}</table></details>`;
}

/** Requests, cost per 1,000 requests and mean latency: the prompt-only vs fine-tuned comparison's cost columns. */
function perRequestCells(u: RunResult['usage'][string] | undefined): string {
  const cost = u?.costPer1kRequestsUsd;
  const ms = u?.meanLatencyMs;
  // The price's provenance beside the figure: a verified list price, an unverified estimate, or the suite's own.
  const label = cost !== undefined ? priceLabel(u?.price) : undefined;
  const note = label
    ? ` <span class="${u?.price?.verified ? 'muted' : 'err'}" data-price="${u?.price?.verified ? 'verified' : 'unverified'}">${esc(label.en)} / ${esc(label.zh)}</span>`
    : '';
  return `<td>${u?.requests ?? 0}</td><td>${cost !== undefined ? cost.toFixed(4) : '–'}${note}</td><td>${ms !== undefined ? ms.toFixed(1) : '–'}</td>`;
}

export function renderRunReport(run: RunResult): string {
  let body = `<h1>Evaluation: ${esc(run.suite)}</h1><p class="muted">run ${esc(run.runId)} · started ${esc(run.started)}${
    run.finished ? ` · finished ${esc(run.finished)}` : ' · <b>partial run</b>'
  } · config ${esc(run.configHash)} · cache ${run.cache.hits} hits / ${run.cache.misses} misses</p>`;
  body +=
    '<h2>Models</h2><p class="muted">Hosted models: cost per 1,000 requests from the price table (src/providers/presets.ts, or the suite\'s prices); every model: mean latency of the requests it answered in this run (cache hits excluded).</p><table><tr><th>id</th><th>model</th><th>kind</th><th>path / adapter</th><th>tokens in/out</th><th>cost (USD)</th><th>requests</th><th>cost / 1,000 requests (USD)</th><th>mean latency (ms)</th></tr>';
  for (const m of run.models) {
    const u = run.usage[m.id];
    body += `<tr><td>${esc(m.id)}</td><td>${esc(m.modelId)}</td><td>${esc(m.kind)}${
      m.unreachable ? ` <span class="err">${UNREACHABLE}</span>` : ''
    }</td><td>${esc([m.path, m.adapter].filter(Boolean).join(' + '))}</td><td>${u ? `${u.promptTokens} / ${u.completionTokens}` : '0 / 0 (cached)'}</td><td>${
      u?.costUsd !== undefined ? u.costUsd.toFixed(4) : '–'
    }</td>${perRequestCells(u)}</tr>`;
  }
  for (const [id, u] of Object.entries(run.usage)) {
    if (run.models.some((m) => m.id === id)) continue;
    body += `<tr><td>${esc(id)}</td><td>${esc(u.modelId)}</td><td class="muted">judge / user simulator</td><td></td><td>${
      u.promptTokens
    } / ${u.completionTokens}</td><td>${u.costUsd !== undefined ? u.costUsd.toFixed(4) : '–'}</td>${perRequestCells(u)}</tr>`;
  }
  body += '</table><h2>Summary</h2><p class="muted">95 % bootstrap confidence intervals in brackets.</p>';
  body += summaryTable(run);
  body += '<h2>Details</h2>';
  for (const t of run.tasks) {
    body += `<h3>${esc(t.task)} — ${esc(t.model)} / ${esc(t.prompt)}</h3>`;
    for (const e of t.errors.slice(0, 20)) body += `<div class="err">${esc(e)}</div>`;
    body += confusionTable(t);
    if (t.conversations) body += t.conversations.map(conversationView).join('');
    else body += examplesView(t);
  }
  if (run.errors.length) body += `<h2>Errors</h2>${run.errors.map((e) => `<div class="err">${esc(e)}</div>`).join('')}`;
  return page(`Loom eval — ${run.suite}`, body);
}

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${reportCss}</style></head><body>${body}</body></html>\n`;
}
