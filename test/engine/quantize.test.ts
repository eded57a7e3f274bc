/** Opt-in MatMulNBits quantization: matches a JS dequantize-then-matmul reference and stays close to fp32. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import onnxPkg from 'onnx-proto';
import * as E from '../../src/engine/index.ts';
import { assertClose, engine, randn, rng, runGraph } from './helpers.ts';

/** Reference dequantization written from the format description (symmetric, implicit zero point 2^(bits-1)). */
function dequant(w: number[], n: number, k: number, bits: number, bs: number): number[] {
  const out = new Array<number>(n * k).fill(0);
  const zero = 2 ** (bits - 1);
  for (let r = 0; r < n; r++) {
    for (let b0 = 0; b0 < k; b0 += bs) {
      const block = w.slice(r * k + b0, r * k + Math.min(k, b0 + bs));
      const big = block.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
      const scale = Math.fround(big / -zero);
      for (const [i, v] of block.entries()) {
        const q = scale === 0 ? zero : Math.min(2 ** bits - 1, Math.max(0, Math.round(v / scale) + zero));
        out[r * k + b0 + i] = (q - zero) * scale;
      }
    }
  }
  return out;
}

for (const bits of [4, 8] as const) {
  test(`MatMulNBits ${bits}-bit on an HF [out,in] weight and a [K,N] weight`, async () => {
    const r = rng(bits);
    const [M, K, N] = [3, 80, 24]; // K not a multiple of the block size: padded last block
    const w = randn(r, N * K); // [N,K] (HF layout)
    const w2 = randn(r, K * N); // [K,N]
    const x = randn(r, M * K);
    const g = new E.Graph();
    const xi = g.input('x', 'float32', ['m', K]);
    g.output('y', E.linear(xi, g.weight('w', E.hostTensor('float32', [N, K], w))));
    g.output('y2', E.matmul(xi, g.weight('w2', E.hostTensor('float32', [K, N], w2))));
    const bytes = E.toOnnx(g, { quantize: { bits, blockSize: 16 } });
    const ops = onnxPkg.onnx.ModelProto.decode(bytes).graph!.node!.map((nd) => nd.opType);
    assert.deepEqual(ops.filter((o) => o === 'MatMulNBits').length, 2, ops.join(','));
    const s = await (await engine()).load(bytes);
    const res = await s.run({ x: E.hostTensor('float32', [M, K], x) });
    await s.release();
    const dq = dequant(w, N, K, bits, 16);
    const w2t: number[] = [];
    for (let j = 0; j < N; j++) for (let i = 0; i < K; i++) w2t.push(w2[i * N + j]!);
    const dq2 = dequant(w2t, N, K, bits, 16);
    const ref = (d: number[]) =>
      Array.from({ length: M * N }, (_, idx) => {
        const [m, n] = [Math.floor(idx / N), idx % N];
        let acc = 0;
        for (let i = 0; i < K; i++) acc += x[m * K + i]! * d[n * K + i]!;
        return acc;
      });
    assertClose(E.toNumbers(res.y!), ref(dq), 1e-4, 1e-4, 'y vs dequantized reference');
    assertClose(E.toNumbers(res.y2!), ref(dq2), 1e-4, 1e-4, 'y2 vs dequantized reference');
    // and close to the fp32 result (quantization error only)
    const full = await runGraph(g, { x: E.hostTensor('float32', [M, K], x) });
    const err = E.toNumbers(res.y!).map((v, i) => Math.abs(v - E.toNumbers(full.y!)[i]!));
    assert.ok(Math.max(...err) < (bits === 4 ? 1.5 : 0.1), `max abs error ${Math.max(...err)}`);
  });
}

test('quantize leaves trainable weights and non-weight MatMuls alone', () => {
  const g = new E.Graph();
  const x = g.input('x', 'float32', [2, 32]);
  const t = g.weight('t', E.hostTensor('float32', [32, 32], new Float32Array(1024)), { trainable: true });
  g.output('y', E.matmul(E.matmul(x, t), E.transpose(x, [1, 0])));
  const ops = onnxPkg.onnx.ModelProto.decode(E.toOnnx(g, { quantize: {} })).graph!.node!.map((nd) => nd.opType);
  assert.ok(!ops.includes('MatMulNBits'), ops.join(','));
});

for (const bits of [4, 8] as const) {
  test(`${bits}-bit embedding Gather -> GatherBlockQuantized, one table shared with the tied head's MatMulNBits`, async () => {
    const r = rng(10 + bits);
    const [V, K, T] = [40, 64, 5];
    const table = randn(r, V * K); // [V, K]
    const ids = [3, 0, 39, 3, 17];
    const g = new E.Graph();
    const idsIn = g.input('ids', 'int64', [1, T]);
    const w = g.weight('emb', E.hostTensor('float32', [V, K], table));
    const h = E.embedding(w, idsIn); // [1, T, K]
    g.output('h', h);
    g.output('logits', E.matmul(h, E.transpose(w, [1, 0]))); // tied head
    const bytes = E.toOnnx(g, { quantize: { bits, blockSize: 32, gather: true } });
    const proto = onnxPkg.onnx.ModelProto.decode(bytes).graph!;
    const ops = proto.node!.map((nd) => nd.opType);
    assert.ok(ops.includes('GatherBlockQuantized') && ops.includes('MatMulNBits'), ops.join(','));
    const big = proto.initializer!.filter((t) => Number(t.dims!.reduce((a, b) => Number(a) * Number(b), 1)) >= V * 2);
    // one packed table (uint8) and one scale vector, no float copy of the table
    assert.deepEqual(big.map((t) => t.dataType).sort(), [1, 2], JSON.stringify(big.map((t) => [t.name, t.dims])));
    const s = await (await engine()).load(bytes);
    const res = await s.run({ ids: E.hostTensor('int64', [1, T], ids.map(BigInt)) });
    await s.release();
    const dq = dequant(table, V, K, bits, 32);
    const want = ids.flatMap((i) => dq.slice(i * K, (i + 1) * K));
    assert.deepEqual(res.h!.dims, [1, T, K]);
    assertClose(E.toNumbers(res.h!), want, 1e-6, 1e-6, 'gathered rows vs dequantized reference');
    const ref = Array.from({ length: T * V }, (_, idx) => {
      const [t, v] = [Math.floor(idx / V), idx % V];
      let acc = 0;
      for (let k = 0; k < K; k++) acc += want[t * K + k]! * dq[v * K + k]!;
      return acc;
    });
    assertClose(E.toNumbers(res.logits!), ref, 1e-4, 1e-4, 'tied head vs dequantized reference');
  });
}
