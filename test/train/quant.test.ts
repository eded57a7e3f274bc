// QLoRA's 4-bit base: the tile quantiser's byte layout (MatMulNBits: low nibble first, zero point 8), the two copies
// dequantising to one matrix, and the graph computing from the 4-bit bytes with gradients equal to plain math on
// that dequantised matrix.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Engine, Graph, grad, type HostTensor, mul, reduceSum, toOnnx } from '../../src/engine/index.ts';
import { loadWeights } from '../../src/models/folder.ts';
import { type CheckpointData, saveCheckpoint } from '../../src/train/checkpoint.ts';
import { qlinear4 } from '../../src/train/graph.ts';
import type { MethodOptions } from '../../src/train/options.ts';
import { configHash, loadResume } from '../../src/train/prepare.ts';
import { packedBytes, QLORA_SCHEME, type Quantized4, quantizeTiles4, tiledBytes } from '../../src/train/quant.ts';
import { cfg, maxRel, tinyProject, trainStep } from './helpers.ts';

const { dir } = tinyProject({ rows: 2 });
after(() => rmSync(dir, { recursive: true, force: true }));

/** Plain decode of MatMulNBits 4-bit bytes: [rows, cols] with blocks of `bs` along cols, w = (q - 8) · scale. */
function decode(q: Quantized4, rows: number, cols: number, bs: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const rowBytes = (q.blocks * bs) / 2;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const byte = q.packed[r * rowBytes + Math.floor(c / 2)]!;
      const v = c % 2 === 1 ? byte >> 4 : byte & 15;
      out[r * cols + c] = Math.fround((v - 8) * q.scales[r * q.blocks + Math.floor(c / bs)]!);
    }
  }
  return out;
}

function seeded(n: number, seed: number, amp = 0.1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed) * amp * (1 + (i % 5)));
}

test('4-bit tiles: nibble order, zero point 8, one scale (signed tile absmax / -8) for both copies', () => {
  // one tile (2 rows < 32, 4 columns = bs): absmax value -2 -> scale 0.25; q = round(w / 0.25) + 8, clamped to 15
  const w = Float32Array.of(-2, 1, 0.5, 0, 0.25, -0.5, 1.75, 2);
  const { fwd, bwd } = quantizeTiles4(w, 2, 4, 4);
  assert.deepEqual([...fwd.scales], [0.25, 0.25]);
  // q row 0: 0 12 10 8; row 1: 9 6 15 15 (2/0.25+8 = 16 clamps)
  assert.deepEqual([...fwd.packed], [0 | (12 << 4), 10 | (8 << 4), 9 | (6 << 4), 15 | (15 << 4)]);
  // Wᵀ [4, 2] in one block of 32 along N: column pairs of q, the 30 padding values at zero point 8
  assert.equal(bwd.blocks, 1);
  assert.deepEqual([...bwd.scales], [0.25, 0.25, 0.25, 0.25]);
  const pad = Array<number>(15).fill(0x88);
  assert.deepEqual(
    [...bwd.packed],
    [0 | (9 << 4), ...pad, 12 | (6 << 4), ...pad, 10 | (15 << 4), ...pad, 8 | (15 << 4), ...pad],
  );
  assert.deepEqual([...decode(fwd, 2, 4, 4)], [-2, 1, 0.5, 0, 0.25, -0.5, 1.75, 1.75]);
});

test('4-bit tiles: both copies dequantise to the same matrix bit for bit; error at most half a step; padded edges', () => {
  const n = 40; // one full and one partial 32-row tile
  const k = 70; // two full and one partial 32-column block
  const w = seeded(n * k, 0.3);
  const { fwd, bwd } = quantizeTiles4(w, n, k, 32);
  assert.equal(fwd.blocks, 3);
  assert.equal(bwd.blocks, 2);
  const d = decode(fwd, n, k, 32);
  const dt = decode(bwd, k, n, 32);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      assert.ok(Object.is(dt[c * n + r], d[r * k + c]), `W[${r},${c}]: ${d[r * k + c]} vs Wᵀ ${dt[c * n + r]}`);
      const s = Math.abs(fwd.scales[r * 3 + Math.floor(c / 32)]!);
      // rows of one tile share a scale
      assert.equal(fwd.scales[r * 3 + Math.floor(c / 32)], fwd.scales[(r - (r % 32)) * 3 + Math.floor(c / 32)]);
      const e = Math.abs(d[r * k + c]! - w[r * k + c]!);
      // +absmax maps to q = 16, which clamps to 15: one step off
      assert.ok(e <= s / 2 + 1e-7 || (e <= s + 1e-7 && Math.abs(w[r * k + c]!) / s > 7.5 - 1e-6), `W[${r},${c}]: ${e}`);
    }
  }
  // padding columns of the last forward block and padding rows of the last transposed block hold q = 8
  const fRow = (3 * 32) / 2;
  for (let r = 0; r < n; r++) for (let b = 35; b < fRow; b++) assert.equal(fwd.packed[r * fRow + b], 0x88);
  for (let c = 0; c < k; c++) for (let b = 20; b < 32; b++) assert.equal(bwd.packed[c * 32 + b], 0x88);
  assert.equal(packedBytes(n, k, 32), n * 48 + n * 3 * 4);
  assert.equal(tiledBytes(n, k, 32), n * 48 + n * 3 * 4 + k * 32 + k * 2 * 4);
});

test('MatMulNBits projection: y = x·Wᵀ and dx = g·W match plain math on the dequantised matrix within 1e-4', async () => {
  const [B, T, n, k] = [2, 3, 48, 80];
  const w = seeded(n * k, 1.1);
  const q = quantizeTiles4(w, n, k, 32);
  const wd = decode(q.fwd, n, k, 32);
  const xv = seeded(B * T * k, 2.2, 1);
  const rv = seeded(B * T * n, 3.3, 1);
  const g = new Graph('qlinear');
  const x = g.weight('x', { dtype: 'float32', dims: [B, T, k], data: xv }, { trainable: true });
  const y = qlinear4(x, q, n, k, 32);
  const loss = reduceSum(mul(y, g.constant({ dtype: 'float32', dims: [B, T, n], data: rv })), [0, 1, 2], false);
  const [dx] = grad(loss, [x]);
  g.output('y', y);
  g.output('dx', dx!);
  const engine = await Engine.create({ threads: 2 });
  let out: Record<string, HostTensor>;
  try {
    const s = await engine.load(toOnnx(g));
    out = await s.run(g.trainableFeeds());
  } finally {
    await engine.close();
  }
  const yRef = new Float32Array(B * T * n);
  const dxRef = new Float32Array(B * T * k);
  for (let m = 0; m < B * T; m++) {
    for (let o = 0; o < n; o++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += xv[m * k + i]! * wd[o * k + i]!;
      yRef[m * n + o] = acc;
    }
    for (let i = 0; i < k; i++) {
      let acc = 0;
      for (let o = 0; o < n; o++) acc += rv[m * n + o]! * wd[o * k + i]!;
      dxRef[m * k + i] = acc;
    }
  }
  const ref = (data: Float32Array): HostTensor => ({ dtype: 'float32', dims: [data.length], data });
  assert.ok(maxRel(out.y!, ref(yRef)) <= 1e-4, `y: ${maxRel(out.y!, ref(yRef))}`);
  assert.ok(maxRel(out.dx!, ref(dxRef)) <= 1e-4, `dx: ${maxRel(out.dx!, ref(dxRef))}`);
});

const optim = { weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-6, maxGradNorm: 1 };
const lora = {
  rank: 4,
  alpha: 8,
  scale: 2,
  dropout: 0.1,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  useRslora: false,
};

test('a QLoRA step (4-bit base through MatMulNBits) equals a LoRA step on the dequantised base within 1e-4', async () => {
  const real = loadWeights(join(dir, 'model'));
  // the reference base: every projection replaced by its 4-bit tiles dequantised here with plain math
  const deq = new Map(real);
  for (const [name, t] of real) {
    if (!/\.(q|k|v|o|gate|up|down)_proj\.weight$/.test(name)) continue;
    const [n, k] = t.dims as [number, number];
    deq.set(name, { ...t, data: decode(quantizeTiles4(t.data, n, k, 64).fwd, n, k, 64) });
  }
  const o: MethodOptions = { method: 'qlora', optim, packing: false, lora, quantBlockSize: 64 };
  const q = await trainStep(dir, o);
  const ref = await trainStep(dir, { method: 'lora', optim, packing: false, lora }, deq);
  const plain = await trainStep(dir, { method: 'lora', optim, packing: false, lora });
  assert.deepEqual(Object.keys(q).sort(), Object.keys(ref).sort());
  for (const key of Object.keys(ref)) {
    assert.ok(maxRel(q[key]!, ref[key]!) <= 1e-4, `${key}: relative difference ${maxRel(q[key]!, ref[key]!)}`);
  }
  // the base really is the 4-bit one: the fp32 base gives another loss
  const loss = (r: Record<string, HostTensor>) => (r.loss!.data as Float32Array)[0]!;
  assert.ok(Math.abs(loss(q) - loss(plain)) > 1e-4 * Math.abs(loss(plain)), `${loss(q)} vs fp32 base ${loss(plain)}`);
});

test('--resume refuses a QLoRA checkpoint whose base was quantised the old way, and takes one of this scheme', () => {
  const out = mkdtempSync(join(tmpdir(), 'loom-qlora-ck-'));
  try {
    const c = cfg({ finetuning_type: 'qlora' });
    const p = { name: 'x', dims: [1], data: Float32Array.of(0) };
    const ck = (step: number, quant: string | undefined): CheckpointData => ({
      state: {
        step,
        epoch: 0,
        batchInEpoch: step,
        rng: [1, 2, 3, 4],
        tokensSeen: 0,
        bestEvalLoss: null,
        bestStep: null,
        badEvals: 0,
        configHash: configHash(c),
        ...(quant ? { quant } : {}),
        elapsed: 0,
      },
      params: [p],
      m: [p],
      v: [p],
    });
    saveCheckpoint(out, ck(1, undefined), 5);
    assert.throws(
      () => loadResume(out, c),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === 'CHECKPOINT' &&
        /per-row blocks \(an earlier Loom\)/.test(e.message) &&
        /without --resume/.test(e.hint ?? ''),
    );
    saveCheckpoint(out, ck(2, QLORA_SCHEME), 5);
    assert.equal(loadResume(out, c).state.step, 2);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
