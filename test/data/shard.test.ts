import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { KeepPolicy } from '../../src/config/data-dedup.ts';
import type { DataRow } from '../../src/core/types.ts';
import { nearDedupStep } from '../../src/data/dedup/near.ts';
import {
  listShardOutputs,
  markShardDone,
  parseShardSpec,
  runShardMerge,
  selectShardFiles,
  shardFromEnv,
  shardPaths,
} from '../../src/data/shard.ts';
import { randomHan, randomWords, runStep, tempDir } from '../../src/data/step-harness.ts';

describe('shard selection', () => {
  it('parses i/N and rejects out-of-range shards', () => {
    assert.deepEqual(parseShardSpec('3/8'), { index: 3, count: 8 });
    assert.deepEqual(parseShardSpec(' 0 / 1 '), { index: 0, count: 1 });
    assert.throws(
      () => parseShardSpec('8/8'),
      (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID',
    );
    assert.throws(() => parseShardSpec('1-4'), /not i\/N/);
  });

  it('reads Slurm array and Kubernetes indexed Job variables', () => {
    assert.deepEqual(shardFromEnv({ SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '4' }), { index: 2, count: 4 });
    assert.deepEqual(
      shardFromEnv({ SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '3' }),
      { index: 2, count: 4 },
    );
    assert.deepEqual(shardFromEnv({ JOB_COMPLETION_INDEX: '1', LOOM_SHARD_COUNT: '3' }), { index: 1, count: 3 });
    assert.equal(shardFromEnv({}), undefined);
  });

  it('splits files round-robin by sorted path, or by hash; shards are disjoint and cover all files', () => {
    const files = Array.from({ length: 10 }, (_, i) => `data/f${i}.jsonl`).reverse();
    assert.deepEqual(selectShardFiles(files, { index: 1, count: 3 }), [
      'data/f1.jsonl',
      'data/f4.jsonl',
      'data/f7.jsonl',
    ]);
    for (const mode of ['sorted', 'hash'] as const) {
      const parts = [0, 1, 2].map((index) => selectShardFiles(files, { index, count: 3 }, mode));
      assert.deepEqual(parts.flat().sort(), [...files].sort());
      assert.equal(new Set(parts.flat()).size, files.length);
    }
  });
});

/** Rows of six input files with duplicate families inside and across files (see the test below). */
function corpus(): DataRow[] {
  const files = Array.from({ length: 6 }, (_, i) => `in/part-${i}.jsonl`);
  const byFile: string[][] = files.map(() => []);
  // Unrelated filler: 8 rows per file.
  for (let f = 0; f < 6; f++) for (let k = 0; k < 8; k++) byFile[f]!.push(randomWords(60, 1000 + f * 10 + k).join(' '));
  // F1: original in file 0, one-word edits in files 3 and 5 (J >= 0.95 with 196 shingles → always candidates).
  const f1 = randomWords(200, 77);
  const edit = (w: string[], p: number, x: string) => {
    const c = [...w];
    c[p] = x;
    return c.join(' ');
  };
  byFile[0]!.splice(2, 0, f1.join(' '));
  byFile[3]!.splice(4, 0, edit(f1, 50, 'zzqa'));
  byFile[5]!.splice(1, 0, `${edit(f1, 150, 'zzqb')} with a longer ending`);
  // F2: Chinese original in file 1, exact copy later in file 1, one-character edit in file 4.
  const f2 = randomHan(200, 5);
  byFile[1]!.splice(0, 0, f2);
  byFile[1]!.push(f2);
  byFile[4]!.splice(3, 0, `${f2.slice(0, 99)}龘${f2.slice(100)}`);
  // F3: weaker chain X (file 2) – Y (file 3) – Z (file 5), J(X,Y) = J(Y,Z) ≈ 0.84: found or not, both runs agree.
  const x = randomWords(300, 31);
  const y = [...x];
  [20, 40, 60, 80, 100].forEach((p, k) => {
    y[p] = `zzc${'abcde'[k]}`;
  });
  const z = [...y];
  [180, 200, 220, 240, 260].forEach((p, k) => {
    z[p] = `zzd${'abcde'[k]}`;
  });
  byFile[2]!.push(x.join(' '));
  byFile[3]!.push(y.join(' '));
  byFile[5]!.push(z.join(' '));
  return files.flatMap((file, f) =>
    byFile[f]!.map((text, k) => ({ id: `${f}:${k + 1}`, text, meta: {}, source: { file, line: k + 1 } })),
  );
}

async function shardedRun(
  dir: string,
  rows: DataRow[],
  count: number,
  keep: KeepPolicy,
  reverse = false,
  verify = false,
  fileOrder?: string[],
): Promise<DataRow[]> {
  const rank = (f: string) => (fileOrder ? fileOrder.indexOf(f) : 0);
  const files = [...new Set(rows.map((r) => r.source.file))];
  for (let index = 0; index < count; index++) {
    const spec = { index, count };
    const mine = new Set(selectShardFiles(files, spec));
    const p = shardPaths(dir, spec);
    mkdirSync(p.dir, { recursive: true });
    const r = await runStep(
      nearDedupStep({ workers: 0, keep, verify, bands_out: p.bands }),
      rows
        .filter((x) => mine.has(x.source.file))
        .sort((a, b) => rank(a.source.file) - rank(b.source.file))
        [reverse ? 'reverse' : 'slice'](),
    );
    writeFileSync(p.rows, r.kept.map((x) => `${JSON.stringify(x)}\n`).join(''));
    markShardDone(dir, spec, { rows: r.kept.length });
  }
  const out = join(dir, 'merged.jsonl');
  const summary = await runShardMerge({ dir, out, nearDedup: { keep, verify }, fileOrder });
  const merged = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as DataRow);
  assert.equal(summary.rows_out, merged.length);
  return merged;
}

describe('shard merge', () => {
  for (const [keep, verify] of [
    ['first', false],
    ['longest', false],
    ['first', true],
  ] as const) {
    it(`equals one run over all files (keep: ${keep}, verify: ${verify})`, async () => {
      const rows = corpus();
      const single = await runStep(nearDedupStep({ workers: 0, keep, verify }), rows);
      const t = tempDir();
      try {
        const merged = await shardedRun(t.dir, rows, 3, keep, false, verify);
        const view = (xs: DataRow[]) =>
          xs.map((x) => `${x.id} ${x.meta.dup_cluster ?? '-'} ${x.meta.dup_cluster_size ?? '-'}`).sort();
        assert.deepEqual(view(merged), view(single.kept));
        // From the construction: F1 keeps 0:3 (first) or the longer copy 5:2 (longest); F2 keeps 1:1 either way
        // (its exact copy and its edit are not longer); 48 filler rows always stay.
        const ids = new Set(merged.map((x) => x.id));
        assert.ok(ids.has(keep === 'first' ? '0:3' : '5:2'));
        assert.ok(!ids.has(keep === 'first' ? '5:2' : '0:3'));
        assert.ok(ids.has('1:1') && !ids.has('1:10') && !ids.has('4:4'));
        assert.equal(merged.filter((x) => x.text!.split(' ').length === 60).length, 48);
      } finally {
        t.cleanup();
      }
    });
  }

  it('keeps one row per cluster even when a shard read its rows in another order', async () => {
    // Shards read their rows backwards: shard 0 keeps F1's copy 3:5 and drops the original 0:3 locally. The global
    // keeper is then chosen among the rows still present (3:5), so F1 survives exactly once.
    const t = tempDir();
    try {
      const merged = await shardedRun(t.dir, corpus(), 3, 'first', true);
      const ids = new Set(merged.map((x) => x.id));
      assert.deepEqual(
        ['0:3', '3:5', '5:2'].filter((id) => ids.has(id)),
        ['3:5'],
      );
      assert.equal(['1:1', '1:10', '4:4'].filter((id) => ids.has(id)).length, 1);
    } finally {
      t.cleanup();
    }
  });

  it("follows the runner's file order for keep: first", async () => {
    // Files read 5, 4, …, 0: F1's first member is now 5:2 (file 5) and F2's is 4:4 (file 4).
    const fileOrder = Array.from({ length: 6 }, (_, i) => `in/part-${5 - i}.jsonl`);
    const rows = corpus().sort((a, b) => fileOrder.indexOf(a.source.file) - fileOrder.indexOf(b.source.file));
    const single = await runStep(nearDedupStep({ workers: 0 }), rows);
    const t = tempDir();
    try {
      const merged = await shardedRun(t.dir, rows, 3, 'first', false, false, fileOrder);
      const ids = new Set(merged.map((x) => x.id));
      assert.deepEqual(
        ['0:3', '3:5', '5:2', '1:1', '1:10', '4:4'].filter((id) => ids.has(id)),
        ['5:2', '4:4'],
      );
      assert.deepEqual([...ids].sort(), single.kept.map((x) => x.id).sort());
    } finally {
      t.cleanup();
    }
  });

  it('refuses to verify at merge when the shards wrote no signatures', async () => {
    const t = tempDir();
    try {
      await shardedRun(t.dir, corpus(), 2, 'first');
      await assert.rejects(
        runShardMerge({ dir: t.dir, out: join(t.dir, 'm2.jsonl'), nearDedup: { verify: true } }),
        /no signature/,
      );
    } finally {
      t.cleanup();
    }
  });

  it('records cross-shard drops with the keeper id and refuses to merge unfinished shards', async () => {
    const rows = corpus();
    const t = tempDir();
    try {
      await shardedRun(t.dir, rows, 3, 'first');
      const rejects = readFileSync(join(t.dir, 'merged.rejects.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { duplicate_of: string; row: DataRow; detail: { cross_shard: boolean } });
      // 5:2 (shard 2) duplicates 0:3 (shard 0); 4:4 (shard 1) duplicates 1:1 (shard 1, already local: not here).
      const r = rejects.find((x) => x.row.id === '5:2');
      assert.ok(r);
      assert.equal(r.duplicate_of, '0:3');
      assert.equal(r.detail.cross_shard, true);
      rmSync(shardPaths(t.dir, { index: 1, count: 3 }).done);
      assert.throws(() => listShardOutputs(t.dir), /shards not finished: 1\/3/);
    } finally {
      t.cleanup();
    }
  });
});
