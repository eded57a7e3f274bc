/** Fused lowering: composites swapped for fused ops give the same outputs; training graphs stay unfused. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import onnxPkg from 'onnx-proto';
import * as E from '../../src/engine/index.ts';
import { assertClose, randn, rng, runGraph } from './helpers.ts';

const opTypes = (bytes: Uint8Array) => onnxPkg.onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!);

function build(withGrad: boolean) {
  const r = rng(5);
  const g = new E.Graph();
  const x = g.input('x', 'float32', ['batch', 'seq', 16]);
  const w = g.weight('norm.weight', E.hostTensor('float32', [16], randn(r, 16, 0.5, 1.5)));
  const lw = g.weight('ln.weight', E.hostTensor('float32', [16], randn(r, 16, 0.5, 1.5)));
  const lb = g.weight('ln.bias', E.hostTensor('float32', [16], randn(r, 16)));
  const p = g.weight('proj', E.hostTensor('float32', [16, 16], randn(r, 256, -0.3, 0.3)), { trainable: withGrad });
  const h = E.rmsNorm(E.matmul(x, p), w, 1e-6);
  const y = E.layerNorm(E.add(h, x), lw, lb, 1e-5);
  g.output('y', y);
  if (withGrad) g.output('gp', E.grad(E.reduceSum(E.mul(y, y), [0, 1, 2], false), [p])[0]!);
  const feeds: Record<string, E.HostTensor> = g.trainableFeeds();
  return { g, feeds };
}

test('fused rmsNorm/layerNorm are numerically equivalent and actually fused', async () => {
  const { g } = build(false);
  const fusedOps = opTypes(E.toOnnx(g, { fused: true }));
  assert.ok(fusedOps.includes('SimplifiedLayerNormalization'), fusedOps.join(','));
  assert.ok(fusedOps.includes('LayerNormalization'), fusedOps.join(','));
  assert.ok(!fusedOps.includes('ReduceMean'), 'no leftover ReduceMean');
  const x = E.hostTensor('float32', [2, 3, 16], randn(rng(9), 96, -3, 3));
  const a = await runGraph(g, { x }, false);
  const b = await runGraph(g, { x }, true);
  assertClose(E.toNumbers(b.y!), E.toNumbers(a.y!), 1e-5, 1e-4, 'fused vs unfused');
});

test('composites whose internals feed a backward pass are not fused', async () => {
  const { g, feeds } = build(true);
  const ops = opTypes(E.toOnnx(g, { fused: true }));
  assert.ok(!ops.includes('SimplifiedLayerNormalization'));
  const x = E.hostTensor('float32', [1, 2, 16], randn(rng(4), 32));
  const a = await runGraph(g, { x, ...feeds }, false);
  const b = await runGraph(g, { x, ...feeds }, true);
  assert.deepEqual(E.toNumbers(b.gp!), E.toNumbers(a.gp!));
});

test('residual add + rmsNorm becomes SkipSimplifiedLayerNormalization with the same outputs', async () => {
  const r = rng(8);
  const g = new E.Graph();
  const x = g.input('x', 'float32', ['batch', 'seq', 16]);
  const w1 = g.weight('w1', E.hostTensor('float32', [16], randn(r, 16, 0.5, 1.5)));
  const w2 = g.weight('w2', E.hostTensor('float32', [16], randn(r, 16, 0.5, 1.5)));
  const p = g.weight('p', E.hostTensor('float32', [16, 16], randn(r, 256, -0.3, 0.3)));
  const h = E.add(x, E.matmul(E.rmsNorm(x, w1, 1e-5), p)); // residual
  const y = E.rmsNorm(h, w2, 1e-5);
  g.output('out', E.add(h, E.matmul(y, p))); // residual read again after the norm
  const ops = opTypes(E.toOnnx(g, { fused: true }));
  assert.ok(ops.includes('SkipSimplifiedLayerNormalization'), ops.join(','));
  const feeds = { x: E.hostTensor('float32', [2, 3, 16], randn(rng(2), 96, -2, 2)) };
  const a = await runGraph(g, feeds, false);
  const b = await runGraph(g, feeds, true);
  assertClose(E.toNumbers(b.out!), E.toNumbers(a.out!), 1e-5, 1e-4, 'skip-fused vs unfused');
});

test('rope with position-gathered tables becomes RotaryEmbedding with the same outputs', async () => {
  const [H, D, maxSeq] = [2, 8, 16];
  const cos: number[] = [];
  const sin: number[] = [];
  for (let p = 0; p < maxSeq; p++) {
    const row = Array.from({ length: D / 2 }, (_, j) => p / 10000 ** ((2 * j) / D));
    cos.push(...row.map(Math.cos), ...row.map(Math.cos));
    sin.push(...row.map(Math.sin), ...row.map(Math.sin));
  }
  const g = new E.Graph();
  const pos = g.input('position_ids', 'int64', ['batch', 'seq']);
  const q = g.input('q', 'float32', ['batch', H, 'seq', D]);
  const k = g.input('k', 'float32', ['batch', 1, 'seq', D]);
  const c = E.unsqueeze(E.gather(g.constant(E.hostTensor('float32', [maxSeq, D], cos)), pos, 0), [1]);
  const s = E.unsqueeze(E.gather(g.constant(E.hostTensor('float32', [maxSeq, D], sin)), pos, 0), [1]);
  g.output('qr', E.rope(q, c, s));
  g.output('kr', E.rope(k, c, s));
  const ops = opTypes(E.toOnnx(g, { fused: true }));
  assert.equal(ops.filter((o) => o === 'RotaryEmbedding').length, 2, ops.join(','));
  const r = rng(11);
  const feeds = {
    position_ids: E.hostTensor('int64', [2, 3], [0, 1, 2, 7, 8, 9]),
    q: E.hostTensor('float32', [2, H, 3, D], randn(r, 2 * H * 3 * D)),
    k: E.hostTensor('float32', [2, 1, 3, D], randn(r, 2 * 3 * D)),
  };
  const a = await runGraph(g, feeds, false);
  const b = await runGraph(g, feeds, true);
  assertClose(E.toNumbers(b.qr!), E.toNumbers(a.qr!), 1e-5, 1e-4, 'q');
  assertClose(E.toNumbers(b.kr!), E.toNumbers(a.kr!), 1e-5, 1e-4, 'k');
});
