import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dequantize4, packedBytes, quantize4 } from '../../src/train/quant.ts';

test('4-bit blocks: MatMulNBits nibble order, zero point 8, scale = signed absmax / -8', () => {
  // one row, one block of 4: absmax value is -2 -> scale 0.25; q = round(w / 0.25) + 8
  const q = quantize4(Float32Array.of(-2, 1, 0.5, 0), 1, 4, 4);
  assert.equal(q.scales[0], 0.25);
  // values q: -2/0.25+8 = 0, 1/0.25+8 = 12, 0.5/0.25+8 = 10, 8
  assert.deepEqual([...q.packed], [0 | (12 << 4), 10 | (8 << 4)]);
  assert.deepEqual([...dequantize4(q, 1, 4, 4)], [-2, 1, 0.5, 0]);
});

test('error per element is at most half a step (one step where +absmax clamps to 15); partial last block', () => {
  const n = 3;
  const k = 40;
  const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 1.7) * 0.1);
  const q = quantize4(w, n, k, 32);
  assert.equal(q.blocks, 2);
  const d = dequantize4(q, n, k, 32);
  for (let i = 0; i < w.length; i++) {
    const s = Math.abs(q.scales[Math.floor(i / k) * 2 + Math.floor((i % k) / 32)]!);
    const e = Math.abs(d[i]! - w[i]!);
    assert.ok(
      e <= s / 2 + 1e-7 || (e <= s + 1e-7 && Math.abs(w[i]!) / s > 7.5 - 1e-6),
      `element ${i}: error ${e}, step ${s}`,
    );
  }
  assert.equal(packedBytes(n, k, 32), n * 32 + n * 2 * 4);
});
