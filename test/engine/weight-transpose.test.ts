/** Transposed frozen weights are read in place (FusedMatMul transB / plain MatMul), with the outputs of math. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import onnxPkg from 'onnx-proto';
import * as E from '../../src/engine/index.ts';
import { assertClose, engine, randn, rng } from './helpers.ts';

const nodesOf = (bytes: Uint8Array) => onnxPkg.onnx.ModelProto.decode(bytes).graph!.node!;

// x [2,3,K] -> h = x·A (A [K,K] trainable) -> y = h·Wᵀ (W [N,K] frozen, HF layout); loss = Σ y².
const K = 4;
const N = 5;
function build() {
  const r = rng(11);
  const g = new E.Graph();
  const x = g.input('x', 'float32', [2, 3, K]);
  const a = g.weight('a', E.hostTensor('float32', [K, K], randn(r, K * K)), { trainable: true });
  const wv = randn(r, N * K);
  const w = g.weight('w', E.hostTensor('float32', [N, K], wv));
  const y = E.matmul(E.matmul(x, a), E.transpose(w, [1, 0]));
  g.output('y', y);
  g.output('ga', E.grad(E.reduceSum(E.mul(y, y), [0, 1, 2], false), [a])[0]!);
  return { g, wv, av: g.trainableFeeds().a!.data as Float32Array };
}

/** float64 reference: y[r][n] = Σk h[r][k] W[n][k]; dL/dA[i][j] = Σr x[r][i] · Σn 2 y[r][n] W[n][j]. */
function reference(xv: number[], av: ArrayLike<number>, wv: number[]) {
  const rows = xv.length / K;
  const h = Array.from({ length: rows * K }, (_, i) => {
    const [r, j] = [Math.floor(i / K), i % K];
    let s = 0;
    for (let k = 0; k < K; k++) s += xv[r * K + k]! * av[k * K + j]!;
    return s;
  });
  const y = Array.from({ length: rows * N }, (_, i) => {
    const [r, n] = [Math.floor(i / N), i % N];
    let s = 0;
    for (let k = 0; k < K; k++) s += h[r * K + k]! * wv[n * K + k]!;
    return s;
  });
  const ga = Array.from({ length: K * K }, (_, idx) => {
    const [i, j] = [Math.floor(idx / K), idx % K];
    let s = 0;
    for (let r = 0; r < rows; r++) {
      let dh = 0;
      for (let n = 0; n < N; n++) dh += 2 * y[r * N + n]! * wv[n * K + j]!;
      s += xv[r * K + i]! * dh;
    }
    return s;
  });
  return { y, ga };
}

test('MatMul(x, Transpose(W frozen)) reads W in place, forward and backward, with the values of a float64 loop', async () => {
  const { g, wv, av } = build();
  const bytes = E.toOnnx(g);
  const nodes = nodesOf(bytes);
  const transposesOfW = nodes.filter((n) => n.opType === 'Transpose' && n.input?.[0] === 'w');
  assert.equal(transposesOfW.length, 0, 'no Transpose of the frozen weight is left for ORT to fold into a copy');
  const fused = nodes.filter((n) => n.opType === 'FusedMatMul');
  assert.equal(fused.length, 1, 'the forward product reads W [N,K] with transB');
  assert.ok(
    nodes.some((n) => n.opType === 'MatMul' && n.input?.[1] === 'w'),
    'the backward product (two transposes) reads W as it is',
  );
  // Switched off, the primitive graph keeps its transposes (the comparison above is about this pass).
  assert.ok(nodesOf(E.toOnnx(g, { foldWeightTransposes: false })).some((n) => n.opType === 'Transpose'));

  const xv = randn(rng(3), 2 * 3 * K);
  const s = await (await engine()).load(bytes);
  try {
    const out = await s.run({ x: E.hostTensor('float32', [2, 3, K], xv), a: E.hostTensor('float32', [K, K], av) });
    const ref = reference(xv, av, wv);
    assertClose(E.toNumbers(out.y!), ref.y, 1e-5, 1e-5, 'y');
    assertClose(E.toNumbers(out.ga!), ref.ga, 1e-4, 1e-5, 'dL/dA');
  } finally {
    await s.release();
  }
});

test('trainable weights and activations keep their MatMul (only frozen initializers are rewritten)', () => {
  const g = new E.Graph();
  const x = g.input('x', 'float32', [3, K]);
  const w = g.weight('w', E.hostTensor('float32', [N, K], randn(rng(2), N * K)), { trainable: true });
  g.output('y', E.matmul(x, E.transpose(w, [1, 0])));
  const ops = nodesOf(E.toOnnx(g)).map((n) => n.opType);
  assert.ok(!ops.includes('FusedMatMul'), ops.join(','));
  assert.ok(ops.includes('Transpose'), ops.join(','));
});
