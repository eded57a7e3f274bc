import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMasked, weightRuns } from '../../src/train/show-tokens.ts';

const decode = async (ids: number[]) => ids.map((i) => String.fromCharCode(96 + i)).join('');

test('trained runs are bracketed (weights other than 1 marked) without ANSI; ANSI colours on a TTY', async () => {
  const ex = { ids: [1, 2, 3, 4, 5, 6], weights: [0, 0, 1, 1, 0.5, 0] };
  assert.deepEqual(
    weightRuns(ex).map((r) => r.ids.length),
    [2, 2, 1, 1],
  );
  assert.equal(await renderMasked(ex, decode, false), 'ab[[cd]][[e]]^0.5f');
  assert.equal(await renderMasked(ex, decode, true), 'ab\x1b[42;30mcd\x1b[0m\x1b[43;30me\x1b[0mf');
});
