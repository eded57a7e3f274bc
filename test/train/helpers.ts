import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TrainConfig, trainConfigSchema } from '../../src/config/train.ts';
import { Engine, type HostTensor } from '../../src/engine/index.ts';
import { createModelFolder, loadWeights, openModelFolder } from '../../src/models/folder.ts';
import type { WeightSource } from '../../src/models/llama.ts';
import { buildTrainGraphs } from '../../src/train/graph.ts';
import type { MethodOptions } from '../../src/train/options.ts';
import { Rng } from '../../src/train/rng.ts';

/** A temp project: a tiny random model (the models helper's preset) and a small, learnable SFT dataset. */
export function tinyProject(opts: { preset?: string; rows?: number } = {}): { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'loom-train-'));
  mkdirSync(dir, { recursive: true });
  createModelFolder(join(dir, 'model'), { preset: opts.preset ?? 'tiny', seed: 1 });
  const rows: string[] = [];
  const n = opts.rows ?? 32;
  for (let i = 0; i < n; i++) {
    rows.push(
      JSON.stringify({
        messages: [
          { role: 'system', content: 'You are a helpful support agent.' },
          { role: 'user', content: `Where is my order ${i % 8}?` },
          { role: 'assistant', content: `Order ${i % 8} ships tomorrow.` },
        ],
      }),
    );
  }
  writeFileSync(join(dir, 'train.jsonl'), `${rows.join('\n')}\n`);
  writeFileSync(join(dir, 'eval.jsonl'), `${rows.slice(0, 6).join('\n')}\n`);
  const text = Array.from({ length: 24 }, (_, i) =>
    JSON.stringify({ text: `the cat sat on the mat number ${i % 4}. `.repeat(3) }),
  );
  writeFileSync(join(dir, 'corpus.jsonl'), `${text.join('\n')}\n`);
  return { dir };
}

export function cfg(over: Record<string, unknown>): TrainConfig {
  return trainConfigSchema.parse({
    model: 'model',
    dataset: 'train.jsonl',
    output_dir: 'out',
    per_device_train_batch_size: 4,
    cutoff_len: 64,
    lr_scheduler_type: 'constant',
    max_steps: 12,
    seed: 3,
    ...over,
  });
}

/**
 * One training step of `o` on the tiny project's model (B=2, T=5, seeded ids, every 4th label masked, a fixed
 * dropout pattern, non-zero LoRA B so every adapter matrix gets a gradient): loss, grad_norm and the updated
 * parameters and moments. `weights` replaces the model's weights (a reference base).
 */
export async function trainStep(
  dir: string,
  o: MethodOptions,
  weights?: WeightSource,
): Promise<Record<string, HostTensor>> {
  const folder = openModelFolder(join(dir, 'model'));
  const model = folder.config;
  folder.close();
  const src = weights ?? loadWeights(join(dir, 'model'));
  const graphs = buildTrainGraphs(model, src, o, () => new Rng(1), new Map(), { accumulate: false, evaluate: false });
  const engine = await Engine.create({ threads: 2 });
  try {
    const s = await engine.load(graphs.step!);
    const B = 2;
    const T = 5;
    const rng = new Rng(3);
    const ids = BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(model.vocabSize)));
    const f32 = (v: number): HostTensor => ({ dtype: 'float32', dims: [], data: Float32Array.of(v) });
    const feeds: Record<string, HostTensor> = {
      input_ids: { dtype: 'int64', dims: [B, T], data: ids },
      labels: { dtype: 'int64', dims: [B, T], data: ids.map((v, i) => (i % 4 === 3 ? -100n : v)) },
      loss_weights: { dtype: 'float32', dims: [B, T], data: new Float32Array(B * T).fill(1) },
      position_ids: {
        dtype: 'int64',
        dims: [B, T],
        data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)),
      },
      loss_scale: f32(1),
      decay_factor: f32(1 - 1e-3 * 0.1),
      step_size: f32(1e-2),
      bias_correction2_sqrt: f32(Math.sqrt(0.05)),
    };
    for (const d of graphs.dropout) {
      const n = B * T * d.features;
      feeds[d.name] = {
        dtype: 'float32',
        dims: [B, T, d.features],
        data: Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : 1 / (1 - d.rate))),
      };
    }
    for (const p of graphs.params) {
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

/** Largest absolute difference relative to the largest magnitude of `b`. */
export function maxRel(a: HostTensor, b: HostTensor): number {
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
