import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataRow } from '../../src/core/types.ts';
import { assignSplits, planSplits, type SplitName, type SplitSummary } from '../../src/data/split.ts';
import { row, stream, tempDir } from '../../src/data/step-harness.ts';

const count = (xs: readonly SplitName[]) => ({
  train: xs.filter((x) => x === 'train').length,
  validation: xs.filter((x) => x === 'validation').length,
  test: xs.filter((x) => x === 'test').length,
});
const singletons = (n: number) => Array.from({ length: n }, (_, i) => ({ keys: [i] }));

describe('planSplits', () => {
  it('meets ratio targets exactly with largest-remainder rounding', () => {
    assert.deepEqual(count(planSplits(singletons(1000))), { train: 800, validation: 100, test: 100 });
    // 7 rows at 0.5/0.25/0.25 → 3.5, 1.75, 1.75 → floors 3, 1, 1; the two spare rows go to the largest
    // remainders (0.75, 0.75) → 3, 2, 2.
    assert.deepEqual(count(planSplits(singletons(7), { train: 0.5, validation: 0.25, test: 0.25 })), {
      train: 3,
      validation: 2,
      test: 2,
    });
  });

  it('takes counts for validation and test, train gets the rest', () => {
    assert.deepEqual(count(planSplits(singletons(1000), { by: 'count', validation: 50, test: 30 })), {
      train: 920,
      validation: 50,
      test: 30,
    });
    assert.throws(() => planSplits(singletons(10), { by: 'count', validation: 8, test: 5 }), /8 validation \+ 5 test/);
  });

  it('is deterministic for a seed and changes with the seed', () => {
    const a = planSplits(singletons(500), { seed: 1 });
    const b = planSplits(singletons(500), { seed: 1 });
    const c = planSplits(singletons(500), { seed: 2 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('stratifies: each label keeps the split proportions', () => {
    const items = [
      ...Array.from({ length: 600 }, (_, i) => ({ label: 'a', keys: [`a${i}`] })),
      ...Array.from({ length: 300 }, (_, i) => ({ label: 'b', keys: [`b${i}`] })),
      ...Array.from({ length: 100 }, (_, i) => ({ label: 'c', keys: [`c${i}`] })),
    ];
    const s = planSplits(items, { stratify: true, seed: 5 });
    const per = (l: string) => count(s.filter((_, i) => items[i]!.label === l));
    assert.deepEqual(per('a'), { train: 480, validation: 60, test: 60 });
    assert.deepEqual(per('b'), { train: 240, validation: 30, test: 30 });
    assert.deepEqual(per('c'), { train: 80, validation: 10, test: 10 });
    // Stratified counts: 100 validation rows spread 60/30/10 over the labels' 60/30/10 % shares.
    const sc = planSplits(items, { stratify: true, by: 'count', validation: 100, test: 0 });
    assert.equal(count(sc.filter((_, i) => items[i]!.label === 'c')).validation, 10);
  });

  it('never splits a group: rows sharing a key land together', () => {
    // 300 rows in groups of sizes 1..9 (group g = floor(i / size pattern)), plus bridges between groups.
    const items: { keys: (string | number)[] }[] = [];
    let g = 0;
    while (items.length < 300) {
      const size = 1 + (g % 9);
      for (let k = 0; k < size && items.length < 300; k++) items.push({ keys: [`g${g}`] });
      g++;
    }
    items[5]!.keys.push('bridge');
    items[250]!.keys.push('bridge');
    for (const seed of [1, 2, 3]) {
      const s = planSplits(items, { seed });
      const splitOfGroup = new Map<string, SplitName>();
      items.forEach((it, i) => {
        const key = it.keys[0] as string;
        const prev = splitOfGroup.get(key);
        if (prev) assert.equal(s[i], prev, `group ${key} straddles splits`);
        splitOfGroup.set(key, s[i]!);
      });
      assert.equal(s[5], s[250]);
      assert.equal(splitOfGroup.get(items[5]!.keys[0] as string), splitOfGroup.get(items[250]!.keys[0] as string));
    }
  });
});

describe('assignSplits (streaming)', () => {
  it('keeps near-dup clusters and exact-duplicate texts in one split, in input order', async () => {
    const rows: DataRow[] = [];
    for (let i = 0; i < 400; i++) {
      const cluster = i % 50 === 0 ? undefined : `c${Math.floor(i / 4)}`;
      rows.push(
        row(`r${i}`, i % 7 === 0 ? 'the same text again' : `text ${i}`, {
          meta: cluster ? { dup_cluster: cluster } : {},
        }),
      );
    }
    const t = tempDir();
    try {
      let summary: SplitSummary | undefined;
      const out: { split: SplitName; row: DataRow }[] = [];
      for await (const x of assignSplits(
        stream(rows),
        { seed: 9 },
        { tmpDir: t.dir, onSummary: (s) => (summary = s) },
      )) {
        out.push(x);
      }
      assert.deepEqual(
        out.map((x) => x.row.id),
        rows.map((r) => r.id),
      );
      const byCluster = new Map<string, SplitName>();
      let sameText: SplitName | undefined;
      for (const { split, row: r } of out) {
        const c = r.meta.dup_cluster as string | undefined;
        if (c) {
          assert.equal(byCluster.get(c) ?? split, split, `cluster ${c} straddles splits`);
          byCluster.set(c, split);
        }
        if (r.text === 'the same text again') {
          assert.equal(sameText ?? split, split);
          sameText = split;
        }
      }
      assert.ok(summary);
      assert.equal(summary.counts.train + summary.counts.validation + summary.counts.test, 400);
      // The exact-duplicate text (every 7th row) chains its clusters into one big group; the rest are groups of
      // up to 4, so each split stays within a group's size of its target (320 / 40 / 40).
      assert.ok(summary.groups < 400);
    } finally {
      t.cleanup();
    }
  });

  it('stratifies labelled rows while streaming', async () => {
    const rows = Array.from({ length: 200 }, (_, i) =>
      row(`r${i}`, `t${i}`, { label: i < 100 ? 'refund' : 'shipping' }),
    );
    const t = tempDir();
    try {
      const got: { split: SplitName; row: DataRow }[] = [];
      for await (const x of assignSplits(
        stream(rows),
        { stratify: true, train: 0.6, validation: 0.2, test: 0.2 },
        { tmpDir: t.dir },
      )) {
        got.push(x);
      }
      const per = (l: string) => count(got.filter((x) => x.row.label === l).map((x) => x.split));
      assert.deepEqual(per('refund'), { train: 60, validation: 20, test: 20 });
      assert.deepEqual(per('shipping'), { train: 60, validation: 20, test: 20 });
    } finally {
      t.cleanup();
    }
  });

  it('rejects ratios that do not sum to 1', () => {
    assert.throws(() => planSplits(singletons(3), { train: 0.5, validation: 0.1, test: 0.1 }), /sum to 1/);
  });
});
