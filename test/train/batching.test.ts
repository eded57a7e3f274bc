import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkDocuments, collate, epochRows, MASKED, packRows, truncateExamples } from '../../src/train/batching.ts';
import { epochPermutation, Rng } from '../../src/train/rng.ts';

const ex = (n: number, firstTrained: number) => ({
  ids: Array.from({ length: n }, (_, i) => 10 + i),
  weights: Array.from({ length: n }, (_, i) => (i >= firstTrained ? 1 : 0)),
});

test('cutoff_len: keep short rows, cut long ones at the end, drop rows whose prompt fills the cutoff', () => {
  const r = truncateExamples([ex(5, 2), ex(12, 4), ex(12, 9)], 8);
  assert.equal(r.kept.length, 2);
  assert.deepEqual(r.dropped, [2]);
  assert.equal(r.truncated, 1);
  assert.deepEqual(r.kept[1]!.ids, [10, 11, 12, 13, 14, 15, 16, 17]);
});

test('collate shifts targets, pads with weight 0 and builds a causal mask', () => {
  const b = collate([{ ids: [5, 6, 7], weights: [0, 1, 1], segments: [1, 1, 1], sources: [0] }], 4);
  assert.equal(b.seq, 4);
  assert.deepEqual([...b.targets], [6n, 7n, 0n, 0n]);
  assert.deepEqual([...b.weights], [1, 1, 0, 0]);
  assert.equal(b.weightSum, 2);
  // row t=1 may see keys 0,1 only
  assert.deepEqual([...b.mask.slice(4, 8)], [0, 0, MASKED, MASKED]);
});

test('packing: positions restart per example, attention is block-diagonal, no target across the boundary', () => {
  const rows = packRows([ex(3, 1), ex(2, 1), ex(4, 1)], [0, 1, 2], 6);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0]!.sources, [0, 1]);
  const b = collate(rows);
  assert.deepEqual([...b.positionIds.slice(0, 5)], [0n, 1n, 2n, 0n, 1n]);
  // token 3 (first of example 1) sees only itself
  const T = b.seq;
  const row3 = [...b.mask.slice(3 * T, 4 * T)];
  assert.deepEqual(row3.slice(0, 5), [MASKED, MASKED, MASKED, 0, MASKED]);
  // position 2 (last of example 0) has no target: next token belongs to another example
  assert.equal(b.weights[2], 0);
  assert.equal(b.weights[3], 1);
});

test('pretraining documents are chunked with eos between them and no cross-document attention', () => {
  const rows = chunkDocuments(
    [
      [1, 2, 3],
      [4, 5],
    ],
    4,
    99,
  );
  assert.deepEqual(
    rows.map((r) => r.ids),
    [
      [1, 2, 3, 99],
      [4, 5, 99],
    ],
  );
});

test('token batching and deterministic epoch order', () => {
  const data = Array.from({ length: 10 }, (_, i) => ex(4 + (i % 3), 1));
  const o = { batchSize: 4, batchTokens: 16, packing: false, cutoffLen: 32, seed: 7, shuffle: true };
  const e0 = epochRows(data, o, 0);
  for (const b of e0) assert.ok(b.length === 1 || Math.max(...b.map((r) => r.ids.length)) * b.length <= 16);
  assert.deepEqual(epochRows(data, o, 0), e0);
  assert.notDeepEqual(epochPermutation(10, 7, 0), epochPermutation(10, 7, 1));
  assert.deepEqual(
    [...epochPermutation(10, 7, 0)].sort((a, b) => a - b),
    [...Array(10).keys()],
  );
});

test('rng state round-trips', () => {
  const a = new Rng(5);
  a.next();
  const s = a.state();
  const x = [a.next(), a.next()];
  const b = new Rng(s);
  assert.deepEqual([b.next(), b.next()], x);
});
