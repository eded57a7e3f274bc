import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Engine, toOnnx } from '../../src/engine/index.ts';
import type { LlamaConfig } from '../../src/models/config.ts';
import { loadWeights, openModelFolder } from '../../src/models/folder.ts';
import { buildLlama, type LinearHook } from '../../src/models/llama.ts';
import { adapterScale, readPeftAdapter } from '../../src/models/peft.ts';
import { SafetensorsReader } from '../../src/models/safetensors.ts';
import { Registry } from '../../src/registry/db.ts';
import { importAdapter } from '../../src/train/adapter-import.ts';
import { loraHook } from '../../src/train/lora.ts';
import { runTraining } from '../../src/train/trainer.ts';
import { cfg, tinyProject } from './helpers.ts';

const { dir } = tinyProject();
after(() => rmSync(dir, { recursive: true, force: true }));

async function logits(
  model: LlamaConfig,
  weights: Map<string, { dtype: 'float32'; dims: number[]; data: Float32Array }>,
  hook?: LinearHook,
): Promise<Float32Array> {
  const g = buildLlama(model, weights, { linear: hook, attentionMask: 'none', logits: 'all' });
  const e = await Engine.create({ threads: 1 });
  try {
    const s = await e.load(toOnnx(g.graph));
    const ids = BigInt64Array.of(3n, 40n, 41n, 100n, 7n, 9n);
    const out = await s.run({
      input_ids: { dtype: 'int64', dims: [1, 6], data: ids },
      position_ids: { dtype: 'int64', dims: [1, 6], data: BigInt64Array.of(0n, 1n, 2n, 3n, 4n, 5n) },
    });
    return out.logits!.data as Float32Array;
  } finally {
    await e.close();
  }
}

test('LoRA: the PEFT adapter reloads bit-identically, and base+adapter and the merged model give the same logits', async () => {
  const r = await runTraining({
    config: cfg({
      output_dir: 'out-merge',
      learning_rate: 2e-2,
      lora_target: 'q_proj,v_proj,down_proj',
      lora_rank: 4,
      lora_alpha: 16,
    }),
    baseDir: dir,
    merge: true,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
  const out = join(dir, 'out-merge');
  const modelDir = join(dir, 'model');
  const folder = openModelFolder(modelDir);
  const model = folder.config;
  folder.close();
  const adapter = readPeftAdapter(join(out, 'adapter'), model);
  assert.equal(adapter.type, 'LORA');
  for (const p of r.params) {
    const t = adapter.tensors.find((x) => x.name === p.name)!;
    assert.ok(t, `${p.name} in adapter`);
    assert.deepEqual(
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength),
    );
  }
  // PEFT key naming
  const st = SafetensorsReader.open(join(out, 'adapter', 'adapter_model.safetensors'));
  assert.ok(st.names().includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
  st.close();
  const ac = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
  assert.deepEqual(
    [ac.peft_type, ac.r, ac.lora_alpha, ac.target_modules],
    ['LORA', 4, 16, ['q_proj', 'v_proj', 'down_proj']],
  );

  const base = loadWeights(modelDir);
  const withAdapter = await logits(model, base, loraHook(adapter.tensors, adapterScale(adapter.config)));
  const merged = await logits(model, loadWeights(join(out, 'merged')));
  const plain = await logits(model, base);
  let diff = 0;
  let moved = 0;
  for (let i = 0; i < merged.length; i++) {
    diff = Math.max(diff, Math.abs(merged[i]! - withAdapter[i]!));
    moved = Math.max(moved, Math.abs(plain[i]! - withAdapter[i]!));
  }
  assert.ok(moved > 1e-3, 'the adapter changes the logits');
  assert.ok(diff < 1e-4, `merged vs adapter logits differ by ${diff}`);

  // adapter import registers it
  const reg = new Registry(':memory:');
  const imp = importAdapter(join(out, 'adapter'), modelDir, reg);
  assert.equal(reg.getRun(imp.id)?.status, 'imported');
  reg.close();
});

test('prefix tuning saves PEFT PREFIX_TUNING layout: prompt_embeddings [tokens, layers*2*kv_heads*head_dim]', async () => {
  await runTraining({
    config: cfg({ output_dir: 'out-prefix', finetuning_type: 'prefix', num_virtual_tokens: 5, max_steps: 2 }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
  const folder = openModelFolder(join(dir, 'model'));
  const model = folder.config;
  folder.close();
  const a = readPeftAdapter(join(dir, 'out-prefix', 'adapter'), model);
  assert.equal(a.type, 'PREFIX_TUNING');
  assert.deepEqual(a.tensors[0]!.dims, [5, model.numLayers * 2 * model.numKvHeads * model.headDim]);
  assert.equal(a.config.num_virtual_tokens, 5);
});

test('full fine-tuning writes a complete HF model folder that loads', async () => {
  await runTraining({
    config: cfg({ output_dir: 'out-full', finetuning_type: 'full', max_steps: 2 }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
  const w = loadWeights(join(dir, 'out-full', 'model'));
  assert.ok(w.has('model.embed_tokens.weight'));
});
