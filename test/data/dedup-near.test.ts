import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DataRow } from '../../src/core/types.ts';
import { nearDedupStep } from '../../src/data/dedup/near.ts';
import { randomHan, randomWords, row, runStep, tempDir } from '../../src/data/step-harness.ts';

// A 200-word text and a copy with one word substituted: at most 5 of its 196 word 5-grams change, so
// J >= 191/201 = 0.95 and P(candidate) = 1 - (1 - 0.95^8)^14 > 0.9999998. Unrelated random texts share no
// 5-gram. Same arithmetic for 200 Han characters with character 5-grams.
const base = randomWords(200, 1);
const enA = base.join(' ');
const enA1 = [...base.slice(0, 100), 'zzzz', ...base.slice(101)].join(' ');
const enB = randomWords(200, 2).join(' ');
const zhA = randomHan(200, 3);
const zhA1 = `${zhA.slice(0, 120)}龘${zhA.slice(121)}`;
const zhB = randomHan(200, 4);

describe('nearDedupStep', () => {
  it('catches near-duplicates in English and Chinese, keeps unrelated texts', async () => {
    const r = await runStep(nearDedupStep({ workers: 0 }), [
      row('r1', enA),
      row('r2', zhA),
      row('r3', enB),
      row('r4', enA1),
      row('r5', zhB),
      row('r6', zhA1),
    ]);
    assert.deepEqual(
      r.kept.map((x) => x.id),
      ['r1', 'r2', 'r3', 'r5'],
    );
    assert.deepEqual(
      r.rejects.map((x) => [(x.row as { id: string }).id, x.duplicate_of, x.reason]),
      [
        ['r4', 'r1', 'near_duplicate'],
        ['r6', 'r2', 'near_duplicate'],
      ],
    );
    assert.deepEqual(r.kept[0]!.meta, { dup_cluster: 'r1', dup_cluster_size: 2 });
    assert.deepEqual(r.kept[2]!.meta, {});
  });

  it('does not treat Chinese as one whitespace token (character shingles)', async () => {
    // With whitespace words, each zh text would be a single token and one changed character would hide the copy.
    const r = await runStep(nearDedupStep({ workers: 0 }), [row('r1', zhA), row('r2', zhA1)]);
    assert.equal(r.kept.length, 1);
  });

  it('clusters transitively: A~B and B~C join A and C even when A and C fail verification', async () => {
    // 300 words → 296 word 5-grams. B = A with 5 substitutions (≥ 5 apart, each kills 5 shingles), C = B with 5
    // more: J(A,B) = J(B,C) = 271/321 = 0.844, J(A,C) = 246/346 = 0.711. With 512 permutations the estimate's
    // standard error is ≤ 0.02, so at threshold 0.78 the A-C pair is rejected and the links A-B, B-C accepted.
    // 64 bands x 2 rows make every one of these pairs an LSH candidate: 1 - (1 - 0.711^2)^64 > 0.99999999.
    const A = randomWords(300, 9);
    const B = [...A];
    [20, 40, 60, 80, 100].forEach((p, k) => {
      B[p] = `zzq${'abcde'[k]}`;
    });
    const C = [...B];
    [180, 200, 220, 240, 260].forEach((p, k) => {
      C[p] = `zzw${'abcde'[k]}`;
    });
    const cfg = { workers: 0, num_perm: 512, bands: 64, rows_per_band: 2, verify: true, threshold: 0.78 };
    const ac = await runStep(nearDedupStep(cfg), [row('r1', A.join(' ')), row('r4', C.join(' '))]);
    assert.equal(ac.kept.length, 2, 'A and C alone are not joined');
    const r = await runStep(nearDedupStep(cfg), [
      row('r1', A.join(' ')),
      row('r2', enB),
      row('r3', C.join(' ')),
      row('r4', B.join(' ')),
    ]);
    assert.deepEqual(
      r.kept.map((x) => x.id),
      ['r1', 'r2'],
    );
    assert.deepEqual(r.kept[0]!.meta, { dup_cluster: 'r1', dup_cluster_size: 3 });
    assert.deepEqual(
      r.rejects.map((x) => [(x.row as { id: string }).id, x.duplicate_of]),
      [
        ['r3', 'r1'],
        ['r4', 'r1'],
      ],
    );
  });

  it('applies the keep policies first / longest / quality', async () => {
    const rows = () => [
      row('r1', enA, { meta: { quality: 0.2 } }),
      row('r2', `${enA} tail`, { meta: { quality: 0.9 } }),
      row('r3', `${enA} a longer tail`, { meta: { quality: '0.5' } }),
      row('r4', enB, { meta: {} }),
    ];
    const first = await runStep(nearDedupStep({ workers: 0, keep: 'first' }), rows());
    const longest = await runStep(nearDedupStep({ workers: 0, keep: 'longest' }), rows());
    const quality = await runStep(nearDedupStep({ workers: 0, keep: 'quality' }), rows());
    assert.deepEqual(
      first.kept.map((x) => x.id),
      ['r1', 'r4'],
    );
    assert.deepEqual(
      longest.kept.map((x) => x.id),
      ['r3', 'r4'],
    );
    assert.deepEqual(
      quality.kept.map((x) => x.id),
      ['r2', 'r4'],
    );
    assert.deepEqual(
      longest.rejects.map((x) => [(x.row as { id: string }).id, x.duplicate_of]),
      [
        ['r1', 'r3'],
        ['r2', 'r3'],
      ],
    );
    assert.equal(quality.kept[0]!.meta.dup_cluster, 'r2');
  });

  it("with action 'mark' keeps every row and tags the whole cluster", async () => {
    const r = await runStep(nearDedupStep({ workers: 0, action: 'mark' }), [
      row('r1', enA),
      row('r2', enA1),
      row('r3', enB),
    ]);
    assert.equal(r.kept.length, 3);
    assert.equal(r.rejects.length, 0);
    assert.deepEqual(
      r.kept.map((x) => x.meta.dup_cluster),
      ['r1', 'r1', undefined],
    );
  });

  it('never clusters rows without tokens, and verification rejects pairs below the threshold', async () => {
    const empty = await runStep(nearDedupStep({ workers: 0 }), [row('r1', '!!!'), row('r2', '???'), row('r3', '')]);
    assert.equal(empty.kept.length, 3);
    // enA vs enA1 has J ≈ 0.95 (see top): kept apart at threshold 0.999, joined at 0.8.
    const strict = await runStep(nearDedupStep({ workers: 0, verify: true, threshold: 0.999 }), [
      row('r1', enA),
      row('r2', enA1),
    ]);
    assert.equal(strict.kept.length, 2);
    const loose = await runStep(nearDedupStep({ workers: 0, verify: true, threshold: 0.8 }), [
      row('r1', enA),
      row('r2', enA1),
    ]);
    assert.equal(loose.kept.length, 1);
    const j = loose.rejects[0]!.detail!.jaccard_estimate as number;
    assert.ok(j >= 0.8 && j < 1, `jaccard estimate ${j}`);
  });

  it('gives the same decisions on worker threads and writes one band record per row', async () => {
    const t = tempDir();
    try {
      const rows = Array.from({ length: 60 }, (_, i) =>
        row(`r${i + 1}`, i % 3 === 2 ? randomWords(120, 100 + i - 2).join(' ') : randomWords(120, 100 + i).join(' ')),
      );
      const bands = join(t.dir, 'bands.jsonl');
      const r = await runStep(nearDedupStep({ workers: 2, bands_out: bands }), rows);
      // Every third row repeats the text two rows earlier: 20 exact copies dropped.
      assert.equal(r.kept.length, 40);
      assert.ok(
        r.rejects.every((x) => Number(x.duplicate_of!.slice(1)) === Number((x.row as { id: string }).id.slice(1)) - 2),
      );
      const lines = readFileSync(bands, 'utf8').trim().split('\n');
      assert.equal(lines.length, 60);
      const rec = JSON.parse(lines[0]!) as { id: string; keys: number[] };
      assert.equal(rec.id, 'r1');
      assert.equal(rec.keys.length, 14);
    } finally {
      t.cleanup();
    }
  });

  it('leaves no band file and no spill behind when its input fails mid-way', async () => {
    const t = tempDir();
    try {
      const bands = join(t.dir, 'out', 'bands.jsonl');
      async function* failing(): AsyncGenerator<DataRow> {
        yield row('r1', enA);
        yield row('r2', enB);
        throw new Error('input died');
      }
      const ctx = { reject: () => undefined, count: () => undefined, tmpDir: join(t.dir, 'tmp'), strict: false };
      await assert.rejects(async () => {
        for await (const _ of nearDedupStep({ workers: 0, bands_out: bands }).run(failing(), ctx)) {
          // consume
        }
      }, /input died/);
      assert.equal(existsSync(bands), false);
      assert.deepEqual(readdirSync(join(t.dir, 'out')), []);
      assert.deepEqual(readdirSync(join(t.dir, 'tmp')), []);
    } finally {
      t.cleanup();
    }
  });

  it('rejects an inconsistent LSH config', () => {
    assert.throws(() => nearDedupStep({ num_perm: 64, bands: 14, rows_per_band: 8 }), /bands \* rows_per_band/);
  });
});
