/**
 * Near-dup on entity-adversarial Chinese pairs, in one run and across shards. Base documents: the 120 CrossWOZ
 * dialogues of test/fixtures/neardup; their place names come from CrossWOZ's own dialogue-act annotations
 * (crosswoz-entities.jsonl: slot values 名称/周边景点/周边酒店/周边餐馆/出发地/目的地 found in the text), not from the
 * detector under test. An adversarial copy keeps every word but one name: one name replaced everywhere by a name
 * from another dialogue, or two names swapped. The bar: adversarial pairs merged <= 2 %, edited copies
 * (three random character edits away from digits) still caught >= 0.95 — in the single run and in the merge.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DataRow } from '../../src/core/types.ts';
import { entitiesConflict, entitySequence } from '../../src/data/dedup/facts.ts';
import { type NearDedupInput, nearDedupStep } from '../../src/data/dedup/near.ts';
import { markShardDone, runShardMerge, shardPaths } from '../../src/data/shard.ts';
import { row, runStep, tempDir } from '../../src/data/step-harness.ts';

const lines = (f: string) =>
  readFileSync(new URL(`../fixtures/neardup/${f}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
const docs = lines('crosswoz-docs.jsonl') as { id: string; text: string }[];
const names = new Map(
  (lines('crosswoz-entities.jsonl') as { id: string; names: string[] }[]).map((e) => [e.id, e.names]),
);
const pool = [...new Set([...names.values()].flat())];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** One annotated name replaced everywhere by another dialogue's name (k even), or two names swapped (k odd). */
function adversarial(id: string, text: string, r: () => number, k: number): string {
  const own = names.get(id)!;
  const a = own[Math.floor(r() * own.length)]!;
  if (k % 2 === 1 && own.length >= 2) {
    let b = a;
    while (b === a) b = own[Math.floor(r() * own.length)]!;
    return text.replaceAll(a, '\u0000').replaceAll(b, a).replaceAll('\u0000', b);
  }
  let b = a;
  while (b === a || text.includes(b)) b = pool[Math.floor(r() * pool.length)]!;
  return text.replaceAll(a, b);
}

/**
 * Three random character edits. Like the number guard's test, the recall bar is for copies whose facts stay the
 * same: edits avoid digits and the annotated names (an edit inside "簋街" makes another name); `anywhere` lifts that.
 */
function edited(id: string, text: string, r: () => number, anywhere = false): string {
  const cs = [...text];
  const fact = new Uint8Array(cs.length + 1);
  if (!anywhere) {
    for (const n of names.get(id) ?? []) {
      for (let i = text.indexOf(n); i >= 0; i = text.indexOf(n, i + 1)) fact.fill(1, i, i + n.length + 1);
    }
  }
  for (let e = 0; e < 3; e++) {
    let at = Math.floor(r() * cs.length);
    while (/[0-9]/.test((cs[at - 1] ?? '') + (cs[at] ?? '')) || fact[at]) at = Math.floor(r() * cs.length);
    const op = Math.floor(r() * 3);
    const han = String.fromCharCode(0x4e00 + Math.floor(r() * 0x5000));
    if (op === 0) cs.splice(at, 1);
    else if (op === 1) cs.splice(at, 0, han);
    else cs[at] = han;
  }
  return cs.join('');
}

type Variant = (d: { id: string; text: string }, i: number) => string;

/** Base rows (file a.jsonl) and their variants (file b.jsonl), as source-tagged rows. */
function pairs(variant: Variant): DataRow[] {
  const base = docs.map((d, i) => ({ ...row(d.id, d.text), source: { file: 'a.jsonl', line: i + 1 } }));
  const vars = docs.map((d, i) => ({ ...row(`${d.id}~`, variant(d, i)), source: { file: 'b.jsonl', line: i + 1 } }));
  return [...base, ...vars];
}

/** Fraction of variants whose row left the output as a duplicate of its own base document. */
function mergedFraction(kept: DataRow[]): number {
  const ids = new Set(kept.map((r) => r.id));
  return docs.filter((d) => !ids.has(`${d.id}~`)).length / docs.length;
}

async function single(variant: Variant, cfg: NearDedupInput = {}): Promise<number> {
  const r = await runStep(nearDedupStep({ workers: 0, ...cfg }), pairs(variant));
  return mergedFraction(r.kept);
}

/** Shard 0 holds the base documents, shard 1 the variants: every pair meets only in the cross-shard merge. */
async function sharded(variant: Variant): Promise<number> {
  const t = tempDir();
  try {
    const rows = pairs(variant);
    for (const [index, file] of ['a.jsonl', 'b.jsonl'].entries()) {
      const spec = { index, count: 2 };
      const p = shardPaths(t.dir, spec);
      mkdirSync(p.dir, { recursive: true });
      const r = await runStep(
        nearDedupStep({ workers: 0, bands_out: p.bands }),
        rows.filter((x) => x.source.file === file),
      );
      writeFileSync(p.rows, r.kept.map((x) => `${JSON.stringify(x)}\n`).join(''));
      markShardDone(t.dir, spec, { rows: r.kept.length });
    }
    const out = join(t.dir, 'merged.jsonl');
    const summary = await runShardMerge({ dir: t.dir, out, nearDedup: {}, fileOrder: ['a.jsonl', 'b.jsonl'] });
    const kept = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DataRow);
    assert.equal(summary.rows_out, kept.length);
    return mergedFraction(kept);
  } finally {
    t.cleanup();
  }
}

const adv: Variant = (() => {
  const r = rng(21);
  const cache = new Map<number, string>();
  return (d, i) => {
    if (!cache.has(i)) cache.set(i, adversarial(d.id, d.text, r, i));
    return cache.get(i)!;
  };
})();
function edits(seed: number, anywhere = false): Variant {
  const r = rng(seed);
  const cache = new Map<number, string>();
  return (d, i) => {
    if (!cache.has(i)) cache.set(i, edited(d.id, d.text, r, anywhere));
    return cache.get(i)!;
  };
}
const edit = edits(22);

describe('near-dup entity guard', () => {
  it('finds names by suffix, Latin words in Chinese text and titled people', () => {
    assert.deepEqual(entitySequence('推荐您去北京海润艾丽华酒店住宿，附近有颐和园。').split('\u001f'), [
      '北京海润艾丽华酒店',
      '颐和园',
    ]);
    assert.deepEqual(entitySequence('我的 iPhone 屏幕碎了，请王先生联系大董(工体店)').split('\u001f'), [
      'iphone',
      '王先生',
      '工体店', // "大董" has no suffix: not found
    ]);
    // English text: its words are not entities (an edited copy changes some of them).
    assert.equal(entitySequence('Please call me back about the order'), '');
  });

  it('entitiesConflict: a changed or swapped name conflicts; a deleted one or a one-character typo does not', () => {
    const base = entitySequence('先去红砖美术馆，再去民航博物馆，晚上住北京人卫酒店。');
    assert.ok(entitiesConflict(base, entitySequence('先去红砖美术馆，再去民航博物馆，晚上住北京国宾酒店。')));
    assert.ok(entitiesConflict(base, entitySequence('先去民航博物馆，再去红砖美术馆，晚上住北京人卫酒店。')));
    assert.ok(!entitiesConflict(base, entitySequence('先去红砖美术馆，晚上住北京人卫酒店。')));
    assert.ok(!entitiesConflict(base, entitySequence('先去红砖美术馆，再去民航博物馆，晚上住北京人衛酒店。')));
  });

  it('every fixture document has annotated names the adversarial copies can change', () => {
    assert.equal(docs.length, 120);
    for (const d of docs) assert.ok((names.get(d.id) ?? []).length >= 1, d.id);
  });

  it('single run: adversarial pairs merge <= 2 %, edited copies are caught >= 0.95', async () => {
    const rate = await single(adv);
    const recall = await single(edit);
    console.log(
      `single run: entity-adversarial merge rate ${(rate * 100).toFixed(1)} %, edited recall ${recall.toFixed(3)}`,
    );
    assert.ok(rate <= 0.02, `merge rate ${rate}`);
    assert.ok(recall >= 0.95, `recall ${recall}`);
  });

  it('edits that touch names count as changed facts: measured, not a bar', async () => {
    const withGuard = await single(edits(23, true));
    const without = await single(edits(23, true), { entities_must_match: false });
    console.log(`edits anywhere: recall ${withGuard.toFixed(3)} with the entity guard, ${without.toFixed(3)} without`);
    assert.ok(without >= 0.95 && withGuard <= without);
  });

  it('without the entity guard the adversarial pairs do merge (the guard is what stops them)', async () => {
    const rate = await single(adv, { entities_must_match: false });
    console.log(`single run without the entity guard: merge rate ${(rate * 100).toFixed(1)} %`);
    assert.ok(rate >= 0.9, `merge rate ${rate}`);
  });

  it('cross-shard merge applies the same guard: <= 2 % merged, >= 0.95 recall', async () => {
    const rate = await sharded(adv);
    const recall = await sharded(edit);
    console.log(
      `cross-shard: entity-adversarial merge rate ${(rate * 100).toFixed(1)} %, edited recall ${recall.toFixed(3)}`,
    );
    assert.ok(rate <= 0.02, `merge rate ${rate}`);
    assert.ok(recall >= 0.95, `recall ${recall}`);
  });
});
