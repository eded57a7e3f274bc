// gradient_checkpointing and loss_chunks change how the step graph computes, not what: one training step (loss,
// grad norm, updated parameters) with each equals the plain graph's, for the methods whose hooks live inside a
// decoder layer (LoRA with dropout inputs, QLoRA's 4-bit base, prefix key/values).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Engine, type HostTensor } from '../../src/engine/index.ts';
import { loadWeights, openModelFolder } from '../../src/models/folder.ts';
import { buildTrainGraphs } from '../../src/train/graph.ts';
import type { MethodOptions } from '../../src/train/options.ts';
import { Rng } from '../../src/train/rng.ts';
import { tinyProject } from './helpers.ts';

const { dir } = tinyProject({ rows: 2 });
after(() => rmSync(dir, { recursive: true, force: true }));

const optim = { weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-6, maxGradNorm: 1 };
const lora = {
  rank: 4,
  alpha: 8,
  scale: 2,
  dropout: 0.1,
  targets: ['q_proj', 'v_proj', 'down_proj'],
  useRslora: false,
};
const methods: MethodOptions[] = [
  { method: 'lora', optim, packing: false, lora },
  { method: 'qlora', optim, packing: false, lora, quantBlockSize: 32 },
  { method: 'prefix', optim, packing: false, numVirtualTokens: 3 },
  { method: 'full', optim, packing: false },
];

async function step(o: MethodOptions): Promise<Record<string, HostTensor>> {
  const folder = openModelFolder(join(dir, 'model'));
  const model = folder.config;
  folder.close();
  const graphs = buildTrainGraphs(model, loadWeights(join(dir, 'model')), o, () => new Rng(1), new Map(), {
    accumulate: false,
    evaluate: false,
  });
  const engine = await Engine.create({ threads: 2 });
  try {
    const s = await engine.load(graphs.step!);
    const B = 2;
    const T = 5;
    const rng = new Rng(3);
    const ids = BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(model.vocabSize)));
    const feeds: Record<string, HostTensor> = {
      input_ids: { dtype: 'int64', dims: [B, T], data: ids },
      labels: { dtype: 'int64', dims: [B, T], data: ids.map((v, i) => (i % 4 === 3 ? -100n : v)) },
      loss_weights: { dtype: 'float32', dims: [B, T], data: new Float32Array(B * T).fill(1) },
      position_ids: {
        dtype: 'int64',
        dims: [B, T],
        data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)),
      },
      loss_scale: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
      decay_factor: { dtype: 'float32', dims: [], data: Float32Array.of(1 - 1e-3 * 0.1) },
      step_size: { dtype: 'float32', dims: [], data: Float32Array.of(1e-2) },
      bias_correction2_sqrt: { dtype: 'float32', dims: [], data: Float32Array.of(Math.sqrt(0.05)) },
    };
    if (o.method === 'qlora') {
      feeds.qlora_nibble_mask = { dtype: 'uint8', dims: [], data: Uint8Array.of(15) };
      feeds.qlora_nibble_shift = { dtype: 'uint8', dims: [], data: Uint8Array.of(4) };
    }
    for (const d of graphs.dropout) {
      const n = B * T * d.features;
      feeds[d.name] = {
        dtype: 'float32',
        dims: [B, T, d.features],
        data: Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : 1 / (1 - d.rate))),
      };
    }
    for (const p of graphs.params) {
      // non-zero LoRA B so every adapter matrix gets a gradient
      const init = p.name.endsWith('lora_B.weight') ? p.init.map((_, i) => ((i % 5) - 2) * 0.01) : p.init;
      feeds[p.name] = { dtype: 'float32', dims: p.dims, data: init };
      feeds[`exp_avg.${p.name}`] = { dtype: 'float32', dims: p.dims, data: new Float32Array(p.init.length) };
      feeds[`exp_avg_sq.${p.name}`] = { dtype: 'float32', dims: p.dims, data: new Float32Array(p.init.length) };
    }
    return await s.run(feeds);
  } finally {
    await engine.close();
  }
}

function maxRel(a: HostTensor, b: HostTensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  let d = 0;
  let m = 0;
  for (let i = 0; i < y.length; i++) {
    d = Math.max(d, Math.abs(x[i]! - y[i]!));
    m = Math.max(m, Math.abs(y[i]!));
  }
  return m === 0 ? d : d / m;
}

for (const o of methods) {
  test(`${o.method}: a step with gradient checkpointing and a chunked loss equals the plain step`, async () => {
    const plain = await step({ ...o, lossChunks: 1, gradientCheckpointing: false });
    const both = await step({ ...o, lossChunks: 3, gradientCheckpointing: true });
    assert.deepEqual(Object.keys(both).sort(), Object.keys(plain).sort());
    const gn = (plain.grad_norm!.data as Float32Array)[0]!;
    assert.ok(gn > 0, 'the step has gradients');
    for (const k of Object.keys(plain)) {
      assert.ok(maxRel(both[k]!, plain[k]!) <= 1e-5, `${k}: relative difference ${maxRel(both[k]!, plain[k]!)}`);
    }
  });
}
