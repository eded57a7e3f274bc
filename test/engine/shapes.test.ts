/** Build-time shape and dtype checks: errors are LoomError('GRAPH') naming the op and the shapes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../../src/engine/index.ts';

function throwsGraph(fn: () => unknown, ...parts: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error && (e as { code?: string }).code === 'GRAPH', `expected GRAPH error, got ${e}`);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" should mention "${p}"`);
    return true;
  });
}

test('mismatched static dims throw with op name and shapes', () => {
  const g = new E.Graph();
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4]);
  const m = g.input('m', 'float32', [4, 5]);
  throwsGraph(() => E.add(a, b), 'Add', '[2,3]', '[4]');
  throwsGraph(() => E.mul(a, b), 'Mul');
  throwsGraph(() => E.matmul(a, m), 'MatMul', '[2,3]', '[4,5]', '3 vs 4');
  throwsGraph(() => E.concat([a, m], 0), 'Concat', '[2,3]', '[4,5]');
  throwsGraph(() => E.reshape(a, [4, -1]), 'Reshape', '[2,3]');
  throwsGraph(() => E.reshape(a, [5]), 'Reshape');
  throwsGraph(() => E.squeeze(a, [0]), 'Squeeze');
  throwsGraph(() => E.transpose(a, [0, 0]), 'Transpose');
  throwsGraph(() => E.where(E.greater(a, 0), a, b), 'Where');
  throwsGraph(() => E.reduceSum(a, [2]), 'ReduceSum', 'axis 2');
  throwsGraph(() => E.rmsNorm(a, b), 'rmsNorm', '[4]', '[2,3]');
});

test('dtype mismatches and bad inputs are caught', () => {
  const g = new E.Graph();
  const a = g.input('a', 'float32', [2]);
  const i = g.input('i', 'int64', [2]);
  throwsGraph(() => E.add(a, i), 'Add', 'dtype');
  throwsGraph(() => E.exp(i), 'Exp');
  throwsGraph(() => E.gather(a, a), 'Gather', 'indices');
  throwsGraph(() => g.input('a', 'float32', [1]), 'already used');
  throwsGraph(
    () => E.crossEntropy(g.input('l', 'float32', [3, 5]), g.input('y', 'int64', [4])),
    'crossEntropy',
    '3',
    '4',
  );
  const q = g.input('q', 'float32', [1, 3, 2, 4]);
  const k = g.input('k', 'float32', [1, 2, 2, 4]);
  throwsGraph(() => E.attention(q, k, k), 'attention', '3', '2');
});

test('symbolic dims: equal symbols pass, unknown symbols are reported when emitted', () => {
  const g = new E.Graph();
  const a = g.input('a', 'float32', ['batch', 'seq', 8]);
  const b = g.input('b', 'float32', ['batch', 'seq', 8]);
  assert.deepEqual(E.add(a, b).shape, ['batch', 'seq', 8]);
  assert.deepEqual(E.matmul(a, g.input('w', 'float32', [8, 3])).shape, ['batch', 'seq', 3]);
  assert.deepEqual(E.concat([a, b], 1).shape, ['batch', '(seq+seq)', 8]);
  throwsGraph(() => E.reshape(a, ['nope', 8]), 'nope');
});

test('grad refuses ops without a rule and non-float targets', () => {
  const g = new E.Graph();
  const x = g.input('x', 'float32', [3]);
  const y = E.scatterElements(E.zerosLike(x), g.constant(E.hostTensor('int64', [1], [0])), E.slice(x, [0], [1]), 0);
  throwsGraph(() => E.grad(E.reduceSum(y, [0]), [x]), 'no gradient rule', 'ScatterElements');
  throwsGraph(() => E.grad(E.reduceSum(x, [0]), [g.input('i', 'int64', [2])]), 'grad');
});
