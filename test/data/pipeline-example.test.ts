import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { lintFile } from '../../src/data/lint.ts';
import { mergeDataShards, runDataPipeline } from '../../src/data/pipeline.ts';

/**
 * The customer-service example is what train and eval consume, so its output is guarded here: it must be clean
 * by our own linter, free of the raw files' fake PII, consistent, and bilingual.
 */
const RAW = 'examples/customer-service/raw';

function lines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('examples/customer-service/data.yaml', async () => {
  const out = mkdtempSync(join(tmpdir(), 'loom-example-'));
  const res = await runDataPipeline('examples/customer-service/data.yaml', { outDir: out, quiet: true });
  const rows = ['train', 'validation', 'test'].flatMap((s) => lines(join(out, `${s}.jsonl`)));
  type Msg = { role: string; content: string };

  test('produces a few hundred chats in three splits, Chinese and English', () => {
    assert.ok(res.counts.output >= 150 && res.counts.output <= 300, String(res.counts.output));
    assert.ok(res.counts.splits.validation! >= 10 && res.counts.splits.test! >= 10);
    const langs = rows.map((r) => (r.meta as { lang: string }).lang);
    assert.ok(langs.filter((l) => l === 'zh').length > 50);
    assert.ok(langs.filter((l) => l === 'en').length > 50);
  });

  test('report.json carries the up-front near-dedup memory estimate and the real index size', () => {
    const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const m = rep.near_dedup_memory;
    assert.equal(m.step, 'near_dedup');
    // Estimated from the input files' line counts before the run (≥ the rows actually read).
    assert.ok(m.estimated_rows >= res.counts.input, JSON.stringify(m));
    assert.ok(m.estimated_bytes > 0 && m.actual_bytes > 0);
    // An up-front estimate is only useful as an upper bound.
    assert.ok(m.estimated_bytes >= m.actual_bytes, JSON.stringify(m));
    assert.match(m.estimate, /B\/row/);
    assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /Near-dedup index memory: estimated up front/);
  });

  test('passes the linter with one system prompt everywhere', async () => {
    for (const s of ['train', 'validation', 'test']) {
      const r = await lintFile(join(out, `${s}.jsonl`));
      assert.equal(r.errors + r.warnings, 0, `${s}: ${JSON.stringify(r.findings.slice(0, 3))}`);
    }
    assert.equal(new Set(rows.map((r) => (r.messages as Msg[])[0]!.content)).size, 1);
  });

  test('contains none of the fake PII of the raw chat logs and FAQ', () => {
    const raw =
      readFileSync(join(RAW, 'chats/chat_logs.jsonl'), 'utf8') + readFileSync(join(RAW, 'faq/faq_en.jsonl'), 'utf8');
    const pii = [
      ...raw.matchAll(/1[3-9]\d{9}/g),
      ...raw.matchAll(/[\w.]+@example\.com/g),
      ...raw.matchAll(/\d{17}[\dX]/g),
      ...raw.matchAll(/\d{16,19}/g),
    ].map((m) => m[0]);
    assert.ok(pii.length >= 10, 'the raw data has PII to find');
    const text = JSON.stringify(rows);
    for (const p of pii) assert.ok(!text.includes(p), p);
    assert.match(text, /<PHONE>/);
    assert.match(text, /<EMAIL>/);
    // Nor do the rejects (pii.rejects_pii: mask by default), although rows with PII are dropped or logged by
    // steps that run before PII masking (filters, normalisation, format).
    const rejects = readFileSync(join(out, 'rejects.jsonl'), 'utf8');
    for (const p of pii) assert.ok(!rejects.includes(p), `rejects.jsonl holds ${p}`);
    const early = lines(join(out, 'rejects.jsonl')).filter(
      (r) => r.step !== 'pii' && /<PHONE>|<EMAIL>|<ID>|<CARD>/.test(JSON.stringify(r.row)),
    );
    assert.ok(early.length > 0, 'some rejects from other steps had PII masked');
  });

  test('with rejects_pii: keep the rejects hold the original text', async () => {
    const keep = mkdtempSync(join(tmpdir(), 'loom-example-keep-'));
    await runDataPipeline('examples/customer-service/data.yaml', {
      outDir: keep,
      quiet: true,
      overrides: ['pii.rejects_pii=keep', 'dedup.near=false'],
    });
    const rejects = readFileSync(join(keep, 'rejects.jsonl'), 'utf8');
    assert.match(rejects, /[\w.]+@example\.com/);
  });

  test('the GBK help-desk export arrives decoded, without its HTML', () => {
    const zh = rows.filter((r) => (r.meta as { origin: string }).origin === 'faq_zh');
    assert.ok(zh.length > 40);
    const answers = zh.map((r) => (r.messages as Msg[])[2]!.content);
    assert.ok(answers.some((a) => a.includes('七天') || a.includes('7 天内')));
    assert.ok(answers.every((a) => !/<\/?p>|<br>/.test(a)));
  });

  test('rejects name step, reason and source for every dropped or changed row', () => {
    const rej = lines(join(out, 'rejects.jsonl')) as {
      step: string;
      reason: string;
      source: { file: string; line: number };
    }[];
    assert.equal(rej.length, res.counts.dropped + res.counts.changed);
    for (const r of rej) {
      assert.ok(r.step && r.reason && r.source.file && r.source.line > 0, JSON.stringify(r).slice(0, 200));
    }
    const files = new Set(rej.map((r) => r.source.file));
    for (const f of [
      'raw/faq/faq_zh_export.csv',
      'raw/faq/faq_en.jsonl',
      'raw/faq/helpcenter_export.json',
      'raw/chats/chat_logs.jsonl',
    ]) {
      assert.ok(files.has(f), f);
    }
  });
});

describe('examples/customer-service/data.yaml in 3 shards + merge', () => {
  // The split assigns rows in stream order and dedup keeps the first copy, so the merge must restore the order
  // of one run over the files (config order) to give the same files; cross-shard exact copies must go too.
  // keep_meta=true also compares the near-dup cluster tags (ids and sizes), which only match when the merge drops
  // cross-shard exact copies before near dedup, as a single run does.
  for (const overrides of [[], ['dedup.near=false'], ['output.keep_meta=true', 'dedup.near.keep=longest']]) {
    test(`train/validation/test are byte-identical to a single run (${overrides.join(' ') || 'near-dedup on'})`, async () => {
      const cfg = 'examples/customer-service/data.yaml';
      const one = mkdtempSync(join(tmpdir(), 'loom-one-'));
      const sharded = mkdtempSync(join(tmpdir(), 'loom-sharded-'));
      await runDataPipeline(cfg, { outDir: one, quiet: true, overrides });
      for (const index of [0, 1, 2]) {
        await runDataPipeline(cfg, { outDir: sharded, quiet: true, overrides, shard: { index, count: 3 } });
      }
      const merged = await mergeDataShards(cfg, { outDir: sharded, quiet: true, overrides });
      for (const s of ['train', 'validation', 'test']) {
        const a = readFileSync(join(one, `${s}.jsonl`), 'utf8');
        assert.ok(a.length > 1000, s);
        assert.equal(readFileSync(join(sharded, `${s}.jsonl`), 'utf8'), a, s);
      }
      // Every row read is accounted for in both runs.
      const single = JSON.parse(readFileSync(join(one, 'report.json'), 'utf8'));
      assert.equal(merged.counts.input, single.totals.input_rows);
      assert.equal(merged.counts.output, single.totals.output_rows);
      assert.equal(merged.counts.dropped, single.totals.dropped);
    });
  }
});
