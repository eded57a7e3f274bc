import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exactDedupStep } from '../../src/data/dedup/exact.ts';
import { row, runStep } from '../../src/data/step-harness.ts';

describe('exactDedupStep', () => {
  it('keeps the first of identical normalised texts and names it in duplicate_of', async () => {
    const r = await runStep(exactDedupStep(), [
      row('r1', 'Hello  World'),
      row('r2', 'hello world'),
      row('r3', 'Hello, world!'),
      row('r4', ' HELLO WORLD\n'),
      row('r5', '你好世界'),
      row('r6', '你好世界'),
    ]);
    assert.deepEqual(
      r.kept.map((x) => x.id),
      ['r1', 'r3', 'r5'],
    );
    assert.deepEqual(
      r.rejects.map((x) => [(x.row as { id: string }).id, x.duplicate_of, x.action, x.step, x.reason]),
      [
        ['r2', 'r1', 'dropped', 'exact_dedup', 'exact_duplicate'],
        ['r4', 'r1', 'dropped', 'exact_dedup', 'exact_duplicate'],
        ['r6', 'r5', 'dropped', 'exact_dedup', 'exact_duplicate'],
      ],
    );
    assert.deepEqual(r.rejects[0]!.source, { file: 'mem.jsonl', line: 2 });
  });

  it('ignores whitespace and punctuation (ASCII and full-width) when asked', async () => {
    const r = await runStep(exactDedupStep({ ignore_punctuation: true }), [
      row('r1', 'Hello, world!'),
      row('r2', 'hello world'),
      row('r3', '你好，世界！'),
      row('r4', '你好 世界'),
      row('r5', 'hello world again'),
    ]);
    assert.deepEqual(
      r.kept.map((x) => x.id),
      ['r1', 'r3', 'r5'],
    );
  });

  it('is case-sensitive when lowercase is off, and dedups message rows by their contents', async () => {
    const r = await runStep(exactDedupStep({ lowercase: false }), [
      row('r1', 'Refund'),
      row('r2', 'refund'),
      { id: 'm1', meta: {}, source: { file: 'c.jsonl', line: 1 }, messages: [{ role: 'user', content: 'hi' }] },
      { id: 'm2', meta: {}, source: { file: 'c.jsonl', line: 2 }, messages: [{ role: 'user', content: 'hi' }] },
    ]);
    assert.deepEqual(
      r.kept.map((x) => x.id),
      ['r1', 'r2', 'm1'],
    );
    assert.equal(r.rejects[0]!.duplicate_of, 'm1');
  });
});
