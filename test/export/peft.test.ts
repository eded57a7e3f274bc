// PEFT export: the run's adapter folder is copied byte for byte (the base path re-pointed) (with lineage.json beside it); an unmerged LoRA
// run exported as HF carries W + (alpha/r)·B·A, checked here against the formula in float64.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { exportModel } from '../../src/export/export.ts';
import { createModelFolder, loadWeights } from '../../src/models/folder.ts';
import { writeLoraAdapter } from '../../src/models/peft.ts';

const work = mkdtempSync(join(tmpdir(), 'loom-export-peft-'));
after(() => rmSync(work, { recursive: true, force: true }));

const base = join(work, 'base');
const { config } = createModelFolder(base, { preset: 'tiny', seed: 2 });
const run = join(work, 'run');
const r = 4;
const alpha = 8;
const rng = new Rng(9);
const H = config.hiddenSize;
const qOut = config.numHeads * config.headDim;
const A = Float32Array.from({ length: r * H }, () => rng.normal() * 0.1);
const B = Float32Array.from({ length: qOut * r }, () => rng.normal() * 0.1);
writeLoraAdapter(
  join(run, 'adapter'),
  [
    { name: 'model.layers.0.self_attn.q_proj.lora_A.weight', dims: [r, H], data: A },
    { name: 'model.layers.0.self_attn.q_proj.lora_B.weight', dims: [qOut, r], data: B },
  ],
  { r, alpha, dropout: 0, targetModules: ['q_proj'], useRslora: false, baseModel: base },
);
writeFileSync(join(run, 'lineage.json'), JSON.stringify({ run_id: 'run-1', base_model: base, dataset_hash: 'abc' }));

test('peft export copies the adapter byte for byte and records lineage', async () => {
  const e = await exportModel({ input: run, format: 'peft', out: join(work, 'peft') });
  for (const f of ['adapter_model.safetensors', 'loom_adapter.json']) {
    assert.deepEqual(readFileSync(join(e.outDir, f)), readFileSync(join(run, 'adapter', f)), f);
  }
  // adapter_config.json too, except base_model_name_or_path: relative to the adapter folder, re-pointed from the
  // new place at the same base (run/adapter -> ../../base, peft -> ../base)
  const json = (d: string) => JSON.parse(readFileSync(join(d, 'adapter_config.json'), 'utf8'));
  const [was, now] = [json(join(run, 'adapter')), json(e.outDir)];
  assert.deepEqual([was.base_model_name_or_path, now.base_model_name_or_path], ['../../base', '../base']);
  assert.deepEqual({ ...now, base_model_name_or_path: 0 }, { ...was, base_model_name_or_path: 0 });
  const l = JSON.parse(readFileSync(e.lineage, 'utf8'));
  assert.equal(l.source.run_id, 'run-1');
  assert.equal(l.source.dataset_hash, 'abc');
  assert.equal(l.roundtrip.checked, 'none');
});

test('hf export of an unmerged LoRA run merges W + alpha/r · B·A', async () => {
  const e = await exportModel({ input: run, format: 'hf', out: join(work, 'hf') });
  assert.ok('verdict' in e.check && e.check.verdict === 'identical');
  const before = loadWeights(base);
  const after = loadWeights(e.outDir);
  const name = 'model.layers.0.self_attn.q_proj.weight';
  const w0 = before.get(name)!.data;
  const w1 = after.get(name)!.data;
  let worst = 0;
  for (let o = 0; o < qOut; o++) {
    for (let i = 0; i < H; i++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += B[o * r + k]! * A[k * H + i]!;
      worst = Math.max(worst, Math.abs(w1[o * H + i]! - (w0[o * H + i]! + (alpha / r) * d)));
    }
  }
  assert.ok(worst < 1e-6, `max |merged - formula| = ${worst}`);
  const k = 'model.layers.0.self_attn.k_proj.weight';
  assert.deepEqual(after.get(k)!.data, before.get(k)!.data);
  assert.equal(JSON.parse(readFileSync(e.lineage, 'utf8')).source.adapter_merged, true);
});
