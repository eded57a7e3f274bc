import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataRow } from '../../src/core/types.ts';
import { boilerplateStep } from '../../src/data/dedup/boilerplate.ts';
import { row, runStep } from '../../src/data/step-harness.ts';

describe('boilerplateStep', () => {
  it('removes lines that occur in at least min_docs rows and logs the change', async () => {
    const rows = [
      ...Array.from({ length: 5 }, (_, i) =>
        row(`r${i + 1}`, `Question number ${i + 1} about my order\nSent from my iPhone`),
      ),
      ...Array.from({ length: 4 }, (_, i) => row(`r${i + 6}`, `Different body ${i}\nBest regards, the team`)),
      row('r10', 'Sent from my iPhone'),
    ];
    const r = await runStep(boilerplateStep({ min_docs: 5 }), rows);
    // "Sent from my iPhone" is in 6 rows (≥ 5): removed from r1..r5; r10 consists only of it and stays.
    // "Best regards, the team" is in 4 rows (< 5): kept.
    assert.deepEqual(
      r.kept.slice(0, 5).map((x) => x.text),
      [1, 2, 3, 4, 5].map((i) => `Question number ${i} about my order`),
    );
    assert.equal(r.kept[5]!.text, 'Different body 0\nBest regards, the team');
    assert.equal(r.kept[9]!.text, 'Sent from my iPhone');
    assert.equal(r.rejects.length, 5);
    assert.ok(r.rejects.every((x) => x.action === 'changed' && x.step === 'boilerplate'));
    assert.deepEqual(r.rejects[0]!.detail, { removed: ['Sent from my iPhone'] });
    assert.equal((r.rejects[0]!.row as DataRow).text, 'Question number 1 about my order\nSent from my iPhone');
  });

  it('strips Chinese sign-offs from message contents, case/space-insensitively, and spares short lines', async () => {
    const conv = (i: number): DataRow => ({
      id: `c${i}`,
      meta: {},
      source: { file: 'chat.jsonl', line: i },
      messages: [
        { role: 'user', content: `我的订单${i}号什么时候发货？\n好的` },
        { role: 'assistant', content: `您好，订单${i}号预计明天发货。\n感谢您的咨询，祝您生活愉快` },
      ],
    });
    const rows = [1, 2, 3].map(conv);
    const r = await runStep(boilerplateStep({ min_docs: 3, min_chars: 5 }), rows);
    for (let i = 0; i < 3; i++) {
      const m = r.kept[i]!.messages!;
      assert.equal(m[1]!.content, `您好，订单${i + 1}号预计明天发货。`);
      // "好的" is 2 characters (< min_chars 5): never boilerplate even though it is in every row.
      assert.equal(m[0]!.content, `我的订单${i + 1}号什么时候发货？\n好的`);
    }
    const en = await runStep(boilerplateStep({ min_docs: 2 }), [
      row('r1', 'alpha beta gamma\nVisit   OUR website today'),
      row('r2', 'delta epsilon\nvisit our website today'),
    ]);
    assert.deepEqual(
      en.kept.map((x) => x.text),
      ['alpha beta gamma', 'delta epsilon'],
    );
  });

  it('counts a line once per row', async () => {
    const r = await runStep(boilerplateStep({ min_docs: 2 }), [
      row('r1', 'repeated line here\nrepeated line here\nunique one'),
      row('r2', 'something else entirely'),
    ]);
    assert.equal(r.rejects.length, 0);
    assert.equal(r.kept[0]!.text, 'repeated line here\nrepeated line here\nunique one');
  });
});
