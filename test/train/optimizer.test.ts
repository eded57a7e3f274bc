import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cast, Engine, Graph, type HostTensor, toOnnx } from '../../src/engine/index.ts';
import { loadWeights, openModelFolder } from '../../src/models/folder.ts';
import { SafetensorsReader } from '../../src/models/safetensors.ts';
import { buildTrainGraphs, globalNorm64 } from '../../src/train/graph.ts';
import type { MethodOptions } from '../../src/train/options.ts';
import { Rng } from '../../src/train/rng.ts';
import { tinyProject } from './helpers.ts';

// The in-graph AdamW + global-norm clipping against torch.optim.AdamW / clip_grad_norm_ semantics written out in
// float64 here (torch 1.13 `_single_tensor_adamw`: param.mul_(1 - lr*wd); exp_avg.mul_(b1).add_(g, 1-b1);
// exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2); denom = sqrt(v)/sqrt(bc2) + eps; param.addcdiv_(m, denom, -lr/bc1);
// clip: coef = max_norm / (total_norm + 1e-6), clamped to 1).
function reference(
  p: Float64Array,
  g: Float64Array,
  m: Float64Array,
  v: Float64Array,
  o: { lr: number; wd: number; b1: number; b2: number; eps: number; t: number; coef: number; decay: boolean },
): { p: Float64Array; m: Float64Array; v: Float64Array } {
  const bc1 = 1 - o.b1 ** o.t;
  const bc2 = 1 - o.b2 ** o.t;
  const P = new Float64Array(p.length);
  const M = new Float64Array(p.length);
  const V = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]! * o.coef;
    const pi = o.decay ? p[i]! * (1 - o.lr * o.wd) : p[i]!;
    M[i] = o.b1 * m[i]! + (1 - o.b1) * gi;
    V[i] = o.b2 * v[i]! + (1 - o.b2) * gi * gi;
    P[i] = pi - (o.lr / bc1) * (M[i]! / (Math.sqrt(V[i]!) / Math.sqrt(bc2) + o.eps));
  }
  return { p: P, m: M, v: V };
}

async function runCase(maxGradNorm: number, gradScale: number): Promise<void> {
  const { dir } = tinyProject({ rows: 2 });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const folder = openModelFolder(join(dir, 'model'));
  const model = folder.config;
  folder.close();
  const weights = loadWeights(join(dir, 'model'));
  const o: MethodOptions = {
    method: 'full',
    optim: { weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-6, maxGradNorm },
    packing: false,
  };
  const graphs = buildTrainGraphs(model, weights, o, () => new Rng(1), new Map(), {
    accumulate: true,
    evaluate: false,
  });
  const engine = await Engine.create({ threads: 1 });
  try {
    const s = await engine.load(graphs.step!);
    const rng = new Rng(11);
    const lr = 3e-3;
    const t = 3;
    const feeds: Record<string, HostTensor> = {
      input_ids: { dtype: 'int64', dims: [1, 4], data: BigInt64Array.of(5n, 6n, 7n, 8n) },
      labels: { dtype: 'int64', dims: [1, 4], data: BigInt64Array.of(6n, 7n, 8n, 9n) },
      loss_weights: { dtype: 'float32', dims: [1, 4], data: Float32Array.of(1, 1, 1, 1) },
      position_ids: { dtype: 'int64', dims: [1, 4], data: BigInt64Array.of(0n, 1n, 2n, 3n) },
      loss_scale: { dtype: 'float32', dims: [], data: Float32Array.of(0) },
      decay_factor: { dtype: 'float32', dims: [], data: Float32Array.of(1 - lr * o.optim.weightDecay) },
      step_size: { dtype: 'float32', dims: [], data: Float32Array.of(lr / (1 - o.optim.beta1 ** t)) },
      bias_correction2_sqrt: { dtype: 'float32', dims: [], data: Float32Array.of(Math.sqrt(1 - o.optim.beta2 ** t)) },
    };
    const inputs = new Map<string, { p: Float32Array; g: Float32Array; m: Float32Array; v: Float32Array }>();
    let sq = 0;
    for (const q of graphs.params) {
      const n = q.init.length;
      const mk = (f: () => number) => Float32Array.from({ length: n }, f);
      const e = {
        p: q.init,
        g: mk(() => (rng.next() - 0.5) * gradScale),
        m: mk(() => (rng.next() - 0.5) * 0.01),
        v: mk(() => rng.next() * 1e-4),
      };
      for (const x of e.g) sq += x * x;
      inputs.set(q.name, e);
      feeds[q.name] = { dtype: 'float32', dims: q.dims, data: e.p };
      feeds[`grad_in.${q.name}`] = { dtype: 'float32', dims: q.dims, data: e.g };
      feeds[`exp_avg.${q.name}`] = { dtype: 'float32', dims: q.dims, data: e.m };
      feeds[`exp_avg_sq.${q.name}`] = { dtype: 'float32', dims: q.dims, data: e.v };
    }
    const out = await s.run(feeds);
    const norm = Math.sqrt(sq);
    assert.ok(
      Math.abs((out.grad_norm!.data as Float32Array)[0]! - norm) / norm < 1e-5,
      'grad_norm is the pre-clip global norm',
    );
    const coef = maxGradNorm > 0 ? Math.min(1, maxGradNorm / (norm + 1e-6)) : 1;
    if (gradScale > 1) assert.ok(coef < 0.5, 'this case clips');
    let worst = 0;
    for (const q of graphs.params) {
      const e = inputs.get(q.name)!;
      const decay = !/norm/.test(q.name);
      const ref = reference(
        Float64Array.from(e.p),
        Float64Array.from(e.g),
        Float64Array.from(e.m),
        Float64Array.from(e.v),
        {
          lr,
          wd: o.optim.weightDecay,
          b1: o.optim.beta1,
          b2: o.optim.beta2,
          eps: o.optim.eps,
          t,
          coef,
          decay,
        },
      );
      const got = {
        p: out[`new.${q.name}`]!.data as Float32Array,
        m: out[`new_exp_avg.${q.name}`]!.data as Float32Array,
        v: out[`new_exp_avg_sq.${q.name}`]!.data as Float32Array,
      };
      for (const k of ['p', 'm', 'v'] as const) {
        for (let i = 0; i < got[k].length; i++) {
          // relative to the operands' scale: p' = p - update may cancel to a tiny number
          const parts = {
            p: Math.abs(e.p[i]!),
            m: Math.max(Math.abs(e.m[i]!), Math.abs(e.g[i]! * coef) * 0.1),
            v: Math.abs(e.v[i]!),
          };
          const scale = Math.max(Math.abs(ref[k][i]!), parts[k], 1e-8);
          const d = Math.abs(got[k][i]! - ref[k][i]!) / scale;
          worst = Math.max(worst, d);
        }
      }
    }
    assert.ok(worst < 1e-5, `max relative error ${worst}`);
  } finally {
    await engine.close();
  }
}

test('AdamW step (decoupled decay, no decay on norms) matches the torch formulas', async () => {
  await runCase(0, 0.02);
});

test('global-norm clipping scales every gradient by max_norm / (norm + 1e-6)', async () => {
  await runCase(1.0, 5);
});

test('AdamW + clipping match a committed PyTorch 1.13 step (tools/reference/adamw_ref.py)', async () => {
  const fx = SafetensorsReader.open(join(import.meta.dirname, '..', 'fixtures', 'train', 'adamw_torch.safetensors'));
  const get = (n: string) => fx.readFloat32(n).data;
  const { dir } = tinyProject({ rows: 2 });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const folder = openModelFolder(join(dir, 'model'));
  const model = folder.config;
  folder.close();
  // settings of the fixture: lr 3e-3, betas (0.9, 0.95), eps 1e-6, weight decay 0.1 (not on the norm), clip 1.0, t = 3
  const o: MethodOptions = {
    method: 'freeze',
    freezeLayers: 1,
    freezeModules: ['q_proj', 'input_layernorm'],
    optim: { weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-6, maxGradNorm: 1 },
    packing: false,
  };
  const graphs = buildTrainGraphs(model, loadWeights(join(dir, 'model')), o, () => new Rng(1), new Map(), {
    accumulate: true,
    evaluate: false,
  });
  assert.deepEqual(graphs.params.map((p) => p.name).sort(), [
    'model.layers.1.input_layernorm.weight',
    'model.layers.1.self_attn.q_proj.weight',
  ]);
  const lr = 3e-3;
  const t = 3;
  const feeds: Record<string, HostTensor> = {
    input_ids: { dtype: 'int64', dims: [1, 3], data: BigInt64Array.of(5n, 6n, 7n) },
    labels: { dtype: 'int64', dims: [1, 3], data: BigInt64Array.of(6n, 7n, 8n) },
    loss_weights: { dtype: 'float32', dims: [1, 3], data: Float32Array.of(1, 1, 1) },
    position_ids: { dtype: 'int64', dims: [1, 3], data: BigInt64Array.of(0n, 1n, 2n) },
    loss_scale: { dtype: 'float32', dims: [], data: Float32Array.of(0) },
    decay_factor: { dtype: 'float32', dims: [], data: Float32Array.of(1 - lr * 0.1) },
    step_size: { dtype: 'float32', dims: [], data: Float32Array.of(lr / (1 - 0.9 ** t)) },
    bias_correction2_sqrt: { dtype: 'float32', dims: [], data: Float32Array.of(Math.sqrt(1 - 0.95 ** t)) },
  };
  for (const p of graphs.params) {
    feeds[p.name] = { dtype: 'float32', dims: p.dims, data: get(`param.${p.name}`) };
    feeds[`grad_in.${p.name}`] = { dtype: 'float32', dims: p.dims, data: get(`grad.${p.name}`) };
    feeds[`exp_avg.${p.name}`] = { dtype: 'float32', dims: p.dims, data: get(`exp_avg.${p.name}`) };
    feeds[`exp_avg_sq.${p.name}`] = { dtype: 'float32', dims: p.dims, data: get(`exp_avg_sq.${p.name}`) };
  }
  const engine = await Engine.create({ threads: 1 });
  try {
    const s = await engine.load(graphs.step!);
    const out = await s.run(feeds);
    const norm = (out.grad_norm!.data as Float32Array)[0]!;
    assert.ok(Math.abs(norm - 19.105070114135742) < 1e-4, `total norm ${norm}`);
    for (const p of graphs.params) {
      for (const k of ['new', 'new_exp_avg', 'new_exp_avg_sq']) {
        const want = get(`${k}.${p.name}`);
        const got = out[`${k}.${p.name}`]!.data as Float32Array;
        const ref =
          k === 'new'
            ? get(`param.${p.name}`)
            : k === 'new_exp_avg'
              ? get(`exp_avg.${p.name}`)
              : get(`exp_avg_sq.${p.name}`);
        for (let i = 0; i < want.length; i++) {
          const scale = Math.max(Math.abs(want[i]!), Math.abs(ref[i]!), 1e-6);
          assert.ok(Math.abs(got[i]! - want[i]!) / scale < 1e-5, `${k}.${p.name}[${i}]: ${got[i]} vs torch ${want[i]}`);
        }
      }
    }
  } finally {
    await engine.close();
    fx.close();
  }
});

test('global gradient norm over millions of float32 elements matches a float64 loop to 1e-7 relative', async () => {
  // Full fine-tuning's embedding gradient alone is millions of entries; a float32 ReduceSum of the squares lost
  // ~1e-4 of the norm. The reference is a plain float64 loop over the very same float32 values.
  const sizes = [3_000_000, 1_000_003, 257, 1];
  const rng = new Rng(5);
  const g = new Graph('norm');
  const ins = sizes.map((n, i) => g.input(`g${i}`, 'float32', [n]));
  g.output('norm', cast(globalNorm64(ins), 'float32'));
  const feeds: Record<string, HostTensor> = {};
  let sq = 0;
  sizes.forEach((n, i) => {
    const data = Float32Array.from({ length: n }, () => rng.next() * 0.01 + 1e-3);
    for (const x of data) sq += x * x;
    feeds[`g${i}`] = { dtype: 'float32', dims: [n], data };
  });
  const engine = await Engine.create({ threads: 2 });
  try {
    const s = await engine.load(toOnnx(g));
    const got = (await s.run(feeds)).norm!.data as Float32Array;
    const want = Math.sqrt(sq);
    assert.ok(Math.abs(got[0]! - want) / want < 1e-7, `norm ${got[0]} vs float64 ${want}`);
  } finally {
    await engine.close();
  }
});
