/** Forward values of ops against hand-computed numbers or independent JS math. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../../src/engine/index.ts';
import { assertClose, engine, randn, rng, runGraph } from './helpers.ts';

const T = (dims: number[], v: number[], dtype: E.DType = 'float32') => E.hostTensor(dtype, dims, v);
const nums = (h: E.HostTensor | undefined) => E.toNumbers(h!);

test('elementwise, matmul and reductions match hand-computed values', async () => {
  const g = new E.Graph();
  const a = g.input('a', 'float32', [2, 2]);
  const b = g.input('b', 'float32', [2, 2]);
  g.output('mm', E.matmul(a, b));
  g.output('add', E.add(a, 10));
  g.output('div', E.div(a, b));
  g.output('pow', E.pow(a, 2));
  g.output('sum', E.reduceSum(a, [1], false));
  g.output('mean', E.reduceMean(a, [0], true));
  g.output('max', E.reduceMax(b, [0, 1], false));
  g.output('sm', E.softmax(g.constant(T([3], [0, Math.log(2), Math.log(5)]))));
  g.output('lsm', E.logSoftmax(g.constant(T([2], [0, 0]))));
  g.output('tr', E.transpose(a, [1, 0]));
  g.output('cat', E.concat([a, b], 0));
  g.output('sl', E.slice(b, [1], [2], [1]));
  g.output('wh', E.where(E.greater(a, 2), a, b));
  g.output('cast', E.cast(g.constant(T([2], [1.7, -1.7])), 'int32'));
  g.output('sig', E.sigmoid(g.constant(0)));
  const r = await runGraph(g, { a: T([2, 2], [1, 2, 3, 4]), b: T([2, 2], [5, 6, 7, 8]) });
  assert.deepEqual(nums(r.mm), [19, 22, 43, 50]);
  assert.deepEqual(nums(r.add), [11, 12, 13, 14]);
  assertClose(nums(r.div), [1 / 5, 2 / 6, 3 / 7, 4 / 8], 1e-7, 1e-6);
  assert.deepEqual(nums(r.pow), [1, 4, 9, 16]);
  assert.deepEqual(nums(r.sum), [3, 7]);
  assert.deepEqual(r.mean!.dims, [1, 2]);
  assert.deepEqual(nums(r.mean), [2, 3]);
  assert.deepEqual(nums(r.max), [8]);
  assertClose(nums(r.sm), [1 / 8, 2 / 8, 5 / 8], 1e-7, 1e-6);
  assertClose(nums(r.lsm), [-Math.LN2, -Math.LN2], 1e-7, 1e-6);
  assert.deepEqual(nums(r.tr), [1, 3, 2, 4]);
  assert.deepEqual(nums(r.cat), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(nums(r.sl), [6, 8]);
  assert.deepEqual(nums(r.wh), [5, 6, 3, 4]);
  assert.deepEqual(nums(r.cast), [1, -1]);
  assert.deepEqual(nums(r.sig), [0.5]);
});

test('gather / embedding / gatherElements / expand / reshape with symbols', async () => {
  const g = new E.Graph();
  const ids = g.input('ids', 'int64', ['batch', 'seq']);
  const w = g.weight('emb', T([3, 2], [0, 1, 10, 11, 20, 21]));
  const e = E.embedding(w, ids);
  assert.deepEqual(e.shape, ['batch', 'seq', 2]);
  const flat = E.reshape(e, [-1, 2]);
  assert.deepEqual(flat.shape, ['batch*seq', 2]);
  const back = E.reshape(flat, ['batch', 'seq', 2]);
  g.output('e', back);
  g.output('ge', E.gatherElements(w, g.constant(E.hostTensor('int64', [3, 1], [1, 0, 1])), 1));
  g.output('ex', E.expand(g.constant(T([2, 1], [1, 2])), [2, 3]));
  const r = await runGraph(g, { ids: E.hostTensor('int64', [2, 2], [2, 0, 1, 1]) });
  assert.deepEqual(r.e!.dims, [2, 2, 2]);
  assert.deepEqual(nums(r.e), [20, 21, 0, 1, 10, 11, 10, 11]);
  assert.deepEqual(nums(r.ge), [1, 10, 21]);
  assert.deepEqual(nums(r.ex), [1, 1, 1, 2, 2, 2]);
});

// Independent JS references.
function jsRmsNorm(x: number[], w: number[], d: number, eps: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length; i += d) {
    const row = x.slice(i, i + d);
    const r = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / d + eps);
    for (const [j, v] of row.entries()) out.push(v * r * w[j]!);
  }
  return out;
}

test('rmsNorm, layerNorm, silu, gelu match the formulas', async () => {
  const r0 = rng(1);
  const x = randn(r0, 12, -2, 2);
  const w = randn(r0, 4, 0.5, 1.5);
  const b = randn(r0, 4);
  const g = new E.Graph();
  const xi = g.input('x', 'float32', [3, 4]);
  const wi = g.weight('w', T([4], w));
  const bi = g.weight('b', T([4], b));
  g.output('rms', E.rmsNorm(xi, wi, 1e-5));
  g.output('ln', E.layerNorm(xi, wi, bi, 1e-5));
  g.output('silu', E.silu(xi));
  g.output('gelu', E.gelu(xi, 'tanh'));
  g.output('gelu_erf', E.gelu(xi, 'none'));
  const r = await runGraph(g, { x: T([3, 4], x) });
  assertClose(nums(r.rms), jsRmsNorm(x, w, 4, 1e-5), 1e-6, 1e-5, 'rms');
  const ln: number[] = [];
  for (let i = 0; i < 12; i += 4) {
    const row = x.slice(i, i + 4);
    const m = row.reduce((s, v) => s + v, 0) / 4;
    const v = row.reduce((s, q) => s + (q - m) ** 2, 0) / 4;
    for (const [j, q] of row.entries()) ln.push(((q - m) / Math.sqrt(v + 1e-5)) * w[j]! + b[j]!);
  }
  assertClose(nums(r.ln), ln, 1e-5, 1e-5, 'layerNorm');
  assertClose(
    nums(r.silu),
    x.map((v) => v / (1 + Math.exp(-v))),
    1e-6,
    1e-5,
    'silu',
  );
  const gt = x.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
  assertClose(nums(r.gelu), gt, 1e-6, 1e-5, 'gelu tanh');
  // erf reference values: gelu(1) = 0.8413447460685429, gelu(-0.5) = -0.15426876936299347 (standard normal cdf).
  const g2 = new E.Graph();
  g2.output('y', E.gelu(g2.constant(T([2], [1, -0.5])), 'none'));
  assertClose(nums((await runGraph(g2, {})).y), [0.8413447460685429, -0.15426876936299347], 1e-6, 1e-5, 'gelu erf');
});

test('rope matches rotate_half', async () => {
  const r0 = rng(2);
  const [Tn, D] = [3, 4];
  const x = randn(r0, Tn * D);
  const pos = [0, 1, 2];
  const inv = [1, 0.01];
  const cos: number[] = [];
  const sin: number[] = [];
  for (const p of pos) for (let j = 0; j < D; j++) cos.push(Math.cos(p * inv[j % 2]!));
  for (const p of pos) for (let j = 0; j < D; j++) sin.push(Math.sin(p * inv[j % 2]!));
  const g = new E.Graph();
  g.output(
    'y',
    E.rope(
      g.input('x', 'float32', [1, 1, Tn, D]),
      g.constant(T([1, 1, Tn, D], cos)),
      g.constant(T([1, 1, Tn, D], sin)),
    ),
  );
  const r = await runGraph(g, { x: T([1, 1, Tn, D], x) });
  const want: number[] = [];
  for (let t = 0; t < Tn; t++) {
    const row = x.slice(t * D, t * D + D);
    const rot = [-row[2]!, -row[3]!, row[0]!, row[1]!];
    for (let j = 0; j < D; j++) want.push(row[j]! * cos[t * D + j]! + rot[j]! * sin[t * D + j]!);
  }
  assertClose(nums(r.y), want, 1e-6, 1e-5);
});

function jsAttention(q: number[], k: number[], v: number[], H: number, Hkv: number, Tq: number, S: number, D: number) {
  const out: number[] = new Array(H * Tq * D).fill(0);
  const G = H / Hkv;
  for (let h = 0; h < H; h++) {
    const kh = Math.floor(h / G);
    for (let i = 0; i < Tq; i++) {
      const sc: number[] = [];
      for (let j = 0; j < S; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[(h * Tq + i) * D + d]! * k[(kh * S + j) * D + d]!;
        sc.push(j <= i + S - Tq ? s / Math.sqrt(D) : Number.NEGATIVE_INFINITY);
      }
      const m = Math.max(...sc);
      const e = sc.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let j = 0; j < S; j++) acc += (e[j]! / z) * v[(kh * S + j) * D + d]!;
        out[(h * Tq + i) * D + d] = acc;
      }
    }
  }
  return out;
}

test('attention (causal, GQA, KV offset, static and symbolic) matches a naive reference', async () => {
  const r0 = rng(3);
  const [H, Hkv, Tq, S, D] = [4, 2, 2, 5, 4];
  const q = randn(r0, H * Tq * D);
  const k = randn(r0, Hkv * S * D);
  const v = randn(r0, Hkv * S * D);
  const want = jsAttention(q, k, v, H, Hkv, Tq, S, D);
  for (const sym of [false, true]) {
    const g = new E.Graph();
    const qi = g.input('q', 'float32', [1, H, sym ? 'seq' : Tq, D]);
    const ki = g.input('k', 'float32', [1, Hkv, sym ? 'total' : S, D]);
    const vi = g.input('v', 'float32', [1, Hkv, sym ? 'total' : S, D]);
    g.output('o', E.attention(qi, ki, vi, { causal: true }));
    const r = await runGraph(g, { q: T([1, H, Tq, D], q), k: T([1, Hkv, S, D], k), v: T([1, Hkv, S, D], v) });
    assert.deepEqual(r.o!.dims, [1, H, Tq, D]);
    assertClose(nums(r.o), want, 1e-5, 1e-4, `attention sym=${sym}`);
  }
});

test('crossEntropy matches -log softmax with ignore index and weights', async () => {
  const logits = [1, 2, 3, 0, 0, 0, -1, 5, 2];
  const labels = [2, -100, 1];
  const lse = (row: number[]) => Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
  const nll0 = lse(logits.slice(0, 3)) - 3;
  const nll2 = lse(logits.slice(6, 9)) - 5;
  const g = new E.Graph();
  const x = g.input('x', 'float32', ['n', 3]);
  const y = g.input('y', 'int64', ['n']);
  const w = g.input('w', 'float32', ['n']);
  g.output('mean', E.crossEntropy(x, y));
  g.output('sum', E.crossEntropy(x, y, { reduction: 'sum' }));
  g.output('none', E.crossEntropy(x, y, { reduction: 'none' }));
  g.output('wmean', E.crossEntropy(x, y, { weights: w }));
  const r = await runGraph(g, {
    x: T([3, 3], logits),
    y: E.hostTensor('int64', [3], labels),
    w: T([3], [0.5, 1, 2]),
  });
  assertClose(nums(r.mean), [(nll0 + nll2) / 2], 1e-6, 1e-5, 'mean');
  assertClose(nums(r.sum), [nll0 + nll2], 1e-6, 1e-5, 'sum');
  assertClose(nums(r.none), [nll0, 0, nll2], 1e-6, 1e-5, 'none');
  assertClose(nums(r.wmean), [(0.5 * nll0 + 2 * nll2) / 2.5], 1e-6, 1e-5, 'weighted mean');
});

test('float16 and int32 tensors cross the boundary; argMax', async () => {
  const g = new E.Graph();
  const h = g.input('h', 'float16', [3]);
  g.output('h2', E.cast(E.mul(E.cast(h, 'float32'), 2), 'float16'));
  g.output('am', E.argMax(g.input('s', 'float32', [2, 3]), -1));
  const r = await runGraph(g, { h: E.hostTensor('float16', [3], [1.5, -2, 0.25]), s: T([2, 3], [1, 5, 2, 9, 0, 1]) });
  assert.deepEqual(nums(r.h2), [3, -4, 0.5]);
  assert.deepEqual(nums(r.am), [1, 0]);
});

test('opset 17 (axes as attributes for ReduceMean/ReduceMax) and opset 21 emit runnable models', async () => {
  const g = new E.Graph();
  const x = g.input('x', 'float32', [2, 3]);
  g.output('m', E.reduceMean(x, [1], false));
  g.output('mx', E.reduceMax(x, [0], false));
  g.output('s', E.reduceSum(x, [0, 1], false));
  const feeds = { x: T([2, 3], [1, 2, 3, 4, 5, 9]) };
  for (const opset of [17, 21]) {
    const s = await (await engine()).load(E.toOnnx(g, { opset }));
    const r = await s.run(feeds);
    await s.release();
    assert.deepEqual(nums(r.m), [2, 6], `opset ${opset}`);
    assert.deepEqual(nums(r.mx), [4, 5, 9], `opset ${opset}`);
    assert.deepEqual(nums(r.s), [24], `opset ${opset}`);
  }
});

test('outputs that alias inputs, constants or each other get Identity nodes', async () => {
  const g = new E.Graph();
  const x = g.input('x', 'float32', [2]);
  const y = E.neg(x);
  g.output('x_copy', x);
  g.output('y', y);
  g.output('y_again', y);
  g.output('c', g.constant(T([1], [7])));
  const r = await runGraph(g, { x: T([2], [1, -2]) });
  assert.deepEqual(nums(r.x_copy), [1, -2]);
  assert.deepEqual(nums(r.y), [-1, 2]);
  assert.deepEqual(nums(r.y_again), [-1, 2]);
  assert.deepEqual(nums(r.c), [7]);
});
