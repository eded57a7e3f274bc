/**
 * Near-dup on number-adversarial Chinese pairs. Base documents: 120 real CrossWOZ dialogues (400 characters,
 * >= 3 numbers each; test/fixtures/neardup). For each, an adversarial copy changes the facts but not the words
 * (one number replaced by another value, or two different numbers swapped), and an edited copy applies three
 * random character edits (delete / insert a Han character / substitute) away from digits. The issue's
 * bar: adversarial pairs merged <= 2 %, edited copies caught >= 0.95. Without the number guard every adversarial
 * pair merges (digits are '0' in shingles), which the last case shows so the guard is what makes the difference.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { nearDedupStep } from '../../src/data/dedup/near.ts';
import { numberSequence, numbersConflict } from '../../src/data/dedup/numbers.ts';
import { row, runStep } from '../../src/data/step-harness.ts';

const docs = readFileSync(new URL('../fixtures/neardup/crosswoz-docs.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => JSON.parse(l) as { id: string; text: string });

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function adversarial(text: string, r: () => number, k: number): string {
  const nums = [...text.matchAll(/[0-9]+/g)];
  if (k % 2 === 0) {
    const m = nums[Math.floor(r() * nums.length)]!;
    let v = m[0];
    while (v === m[0]) v = String(Math.floor(r() * 10 ** m[0].length));
    return text.slice(0, m.index) + v + text.slice(m.index! + m[0].length);
  }
  // Swap two different numbers (first pair of distinct values).
  const a = nums[0]!;
  const b = nums.find((x) => x[0] !== a[0]);
  if (!b) return adversarial(text, r, 0);
  return (
    text.slice(0, a.index) +
    b[0] +
    text.slice(a.index! + a[0].length, b.index) +
    a[0] +
    text.slice(b.index! + b[0].length)
  );
}

function edited(text: string, r: () => number, digitsToo = false): string {
  const cs = [...text];
  for (let e = 0; e < 3; e++) {
    let at = Math.floor(r() * cs.length);
    // An edit on or next to a digit changes a number, which is what the guard is for; the recall bar is for
    // copies whose facts stay the same.
    while (!digitsToo && /[0-9]/.test((cs[at - 1] ?? '') + (cs[at] ?? ''))) at = Math.floor(r() * cs.length);
    const op = Math.floor(r() * 3);
    const han = String.fromCharCode(0x4e00 + Math.floor(r() * 0x5000));
    if (op === 0) cs.splice(at, 1);
    else if (op === 1) cs.splice(at, 0, han);
    else cs[at] = han;
  }
  return cs.join('');
}

/** Fraction of variant rows dropped as (or keeping) a duplicate of their own base document. */
async function mergeRate(variant: (t: string, i: number) => string, numbersMustMatch: boolean): Promise<number> {
  const rows = docs.flatMap((d, i) => [row(d.id, d.text), row(`${d.id}~`, variant(d.text, i))]);
  // "Without the guard" means without any facts guard (entities too), so the comparison isolates what guards do.
  const guard = { numbers_must_match: numbersMustMatch, entities_must_match: numbersMustMatch };
  const r = await runStep(nearDedupStep({ workers: 0, ...guard }), rows);
  let merged = 0;
  for (const rej of r.rejects) {
    const id = (rej.row as { id: string }).id;
    if (id.endsWith('~') && rej.duplicate_of === id.slice(0, -1)) merged++;
    else if (`${id}~` === rej.duplicate_of) merged++;
  }
  return merged / docs.length;
}

describe('near-dup number guard', () => {
  it('numbersConflict: changed and swapped numbers conflict, deleted ones do not', () => {
    const base = numberSequence('第 13 期活动，满 300 减 30，电话 010-62754070');
    assert.equal(base, ['13', '300', '30', '010', '62754070'].join('\u001f'));
    assert.ok(numbersConflict(base, numberSequence('第 3 期活动，满 300 减 30，电话 010-62754070')));
    assert.ok(numbersConflict(base, numberSequence('第 300 期活动，满 13 减 30，电话 010-62754070')));
    assert.ok(!numbersConflict(base, numberSequence('第 13 期活动，满 300 减 30')));
    assert.ok(!numbersConflict(base, numberSequence('第 １３ 期活动，满 300 减 30，电话 010-62754070')));
    assert.ok(!numbersConflict(base, numberSequence('没有数字')));
  });

  it('adversarial zh pairs merge <= 2 % with the default config', async () => {
    const r = rng(11);
    const rate = await mergeRate((t, i) => adversarial(t, r, i), true);
    console.log(`adversarial merge rate: ${(rate * 100).toFixed(1)} % of ${docs.length}`);
    assert.ok(rate <= 0.02, `merge rate ${rate}`);
  });

  it('edited copies are still caught (recall >= 0.95)', async () => {
    const r = rng(12);
    const recall = await mergeRate((t) => edited(t, r), true);
    console.log(`edited-copy recall: ${recall.toFixed(3)} of ${docs.length}`);
    assert.ok(recall >= 0.95, `recall ${recall}`);
  });

  it('edits that touch digits count as changed facts: measured, not a bar', async () => {
    const r = rng(12);
    const withGuard = await mergeRate((t) => edited(t, r, true), true);
    const r2 = rng(12);
    const without = await mergeRate((t) => edited(t, r2, true), false);
    console.log(`edits anywhere: recall ${withGuard.toFixed(3)} with guard, ${without.toFixed(3)} without`);
    assert.ok(without >= 0.95 && withGuard < without);
  });

  it('without the guard the adversarial pairs do merge (the guard is what stops them)', async () => {
    const r = rng(11);
    const rate = await mergeRate((t, i) => adversarial(t, r, i), false);
    console.log(`adversarial merge rate without guard: ${(rate * 100).toFixed(1)} %`);
    assert.ok(rate >= 0.9, `merge rate without guard ${rate}`);
  });
});
