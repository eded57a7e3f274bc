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

/** Nearest float16 value (11 significant bits, normal range), by plain arithmetic: no engine helper involved. */
function roundHalf(x: number): number {
  if (x === 0) return 0;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const ulp = 2 ** (e - 10);
  return Math.round(x / ulp) * ulp;
}

/** IEEE half bits -> number, from the bit layout (1 sign, 5 exponent, 10 mantissa). */
function halfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  return sign * (exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15));
}

for (const bits of [4, 8] as const) {
  test(`${bits}-bit float16 block scales: the file holds half scales behind a Cast, codes chosen against them`, async () => {
    const r = rng(20 + bits);
    const [M, K, N] = [2, 64, 12];
    const w = randn(r, N * K).map((v) => v * 0.05); // a trained model's scale, scales well inside half's normal range
    const x = randn(r, M * K);
    const g = new E.Graph();
    const xi = g.input('x', 'float32', ['m', K]);
    g.output('y', E.linear(xi, g.weight('w', E.hostTensor('float32', [N, K], w))));
    const bytes = E.toOnnx(g, { quantize: { bits, blockSize: 32, scaleType: 'float16' } });
    const proto = onnxPkg.onnx.ModelProto.decode(bytes).graph!;
    const cast = proto.node!.find((nd) => nd.opType === 'Cast');
    const mm = proto.node!.find((nd) => nd.opType === 'MatMulNBits')!;
    assert.ok(cast && cast.output![0] === mm.input![2], 'the MatMulNBits scales come from a Cast');
    const sInit = proto.initializer!.find((t) => t.name === cast.input![0])!;
    const bInit = proto.initializer!.find((t) => t.name === mm.input![1])!;
    assert.equal(sInit.dataType, 10, 'scales stored as float16');
    const sRaw = sInit.rawData!;
    const halves = new Uint16Array(sRaw.buffer.slice(sRaw.byteOffset, sRaw.byteOffset + sRaw.byteLength));
    assert.equal(halves.length, N * (K / 32));
    const packed = bInit.rawData!;
    assert.equal(packed.length, (N * K * bits) / 8);
    // reference, by hand: scale = half(signed max / -2^(bits-1)); q = clamp(round(v / scale) + zero)
    const zero = 2 ** (bits - 1);
    const dq: number[] = [];
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < K / 32; b++) {
        const block = w.slice(n * K + b * 32, n * K + b * 32 + 32);
        const big = block.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
        const scale = roundHalf(big / -zero);
        assert.equal(halfBits(halves[n * (K / 32) + b]!), scale, `scale of row ${n} block ${b}`);
        for (const [i, v] of block.entries()) {
          const q = Math.min(2 ** bits - 1, Math.max(0, Math.round(v / scale) + zero));
          const at = n * K + b * 32 + i;
          const got = bits === 8 ? packed[at]! : (packed[at >> 1]! >> ((at & 1) * 4)) & 15;
          assert.equal(got, q, `code of row ${n} column ${b * 32 + i}`);
          dq.push((q - zero) * scale);
        }
      }
    }
    const s = await (await engine()).load(bytes);
    const res = await s.run({ x: E.hostTensor('float32', [M, K], x) });
    await s.release();
    const ref = Array.from({ length: M * N }, (_, idx) => {
      const [m, n] = [Math.floor(idx / N), idx % N];
      let acc = 0;
      for (let i = 0; i < K; i++) acc += x[m * K + i]! * dq[n * K + i]!;
      return acc;
    });
    assertClose(E.toNumbers(res.y!), ref, 1e-5, 1e-4, 'y vs the dequantised half-scale reference');
  });
}

test('bitsOf: an 8-bit vocabulary table in a 4-bit model, one copy for the Gather and the tied head', async () => {
  const r = rng(31);
  const [V, K, T] = [48, 64, 3];
  const table = randn(r, V * K);
  const wq = randn(r, K * K);
  const ids = [5, 47, 0];
  const g = new E.Graph();
  const idsIn = g.input('ids', 'int64', [1, T]);
  const emb = g.weight('emb', E.hostTensor('float32', [V, K], table));
  const h = E.linear(E.embedding(emb, idsIn), g.weight('wq', E.hostTensor('float32', [K, K], wq)));
  g.output('logits', E.matmul(h, E.transpose(emb, [1, 0])));
  const bytes = E.toOnnx(g, {
    quantize: { bits: 4, blockSize: 32, gather: true, bitsOf: (name) => (name === 'emb' ? 8 : undefined) },
  });
  const proto = onnxPkg.onnx.ModelProto.decode(bytes).graph!;
  const bitsAttr = (nd: onnxPkg.onnx.INodeProto) => Number(nd.attribute!.find((a) => a.name === 'bits')!.i);
  const mms = proto.node!.filter((nd) => nd.opType === 'MatMulNBits');
  const gbq = proto.node!.find((nd) => nd.opType === 'GatherBlockQuantized')!;
  assert.deepEqual(mms.map(bitsAttr).sort(), [4, 8]);
  assert.equal(bitsAttr(gbq), 8);
  const head = mms.find((nd) => bitsAttr(nd) === 8)!;
  assert.equal(head.input![1], gbq.input![0], 'the head and the Gather read one 8-bit table');
  const s = await (await engine()).load(bytes);
  const res = await s.run({ ids: E.hostTensor('int64', [1, T], ids.map(BigInt)) });
  await s.release();
  const dqT = dequant(table, V, K, 8, 32);
  const dqW = dequant(wq, K, K, 4, 32); // [out, in] of the HF-layout weight
  const hRef = ids.map((id) =>
    Array.from({ length: K }, (_, o) => {
      let acc = 0;
      for (let i = 0; i < K; i++) acc += dqT[id * K + i]! * dqW[o * K + i]!;
      return acc;
    }),
  );
  const ref = hRef.flatMap((row) =>
    Array.from({ length: V }, (_, v) => row.reduce((a, x, i) => a + x * dqT[v * K + i]!, 0)),
  );
  assertClose(E.toNumbers(res.logits!), ref, 1e-4, 1e-4, 'logits vs dequantised reference (8-bit table, 4-bit wq)');
});
