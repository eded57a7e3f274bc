// adapter_config.json holds only PEFT config fields (checked against the field lists read from PEFT's own source,
// test/fixtures/peft/config-fields.json), names the base by Hub id or by a path relative to the adapter folder, and
// Loom's loaders still find the base after the project folder is moved.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { exportModel } from '../../src/export/export.ts';
import { openExportSource } from '../../src/export/source.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { hubIdOf, mergeLoraInto, peftBaseName, readPeftAdapter } from '../../src/models/peft.ts';
import type { Float32Named } from '../../src/models/safetensors.ts';
import { importAdapter } from '../../src/train/adapter-import.ts';
import { runTraining } from '../../src/train/trainer.ts';
import { cfg, tinyProject } from './helpers.ts';

const { dir } = tinyProject();
const moved = `${dir}-moved`;
after(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(moved, { recursive: true, force: true });
});

const FIELDS = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'fixtures', 'peft', 'config-fields.json'), 'utf8'),
) as {
  commit: string;
  LoraConfig: string[];
  PrefixTuningConfig: string[];
  older: { LoraConfig: string[]; PrefixTuningConfig: string[] };
};

const train = (over: Record<string, unknown>) =>
  runTraining({
    config: cfg({ max_steps: 2, learning_rate: 1e-2, ...over }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
const adapterConfig = (out: string) =>
  JSON.parse(readFileSync(join(dir, out, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
const notIn = (keys: string[], allowed: string[]) => keys.filter((k) => !allowed.includes(k));

test('LoRA adapter_config.json keys are LoraConfig fields (current PEFT and 0.6.0); Loom metadata in loom_adapter.json', async () => {
  assert.match(FIELDS.commit, /^[0-9a-f]{40}$/);
  await train({ output_dir: 'lora' });
  const ac = adapterConfig('lora');
  assert.deepEqual(notIn(Object.keys(ac), FIELDS.LoraConfig), []);
  assert.deepEqual(notIn(Object.keys(ac), FIELDS.older.LoraConfig), []);
  assert.equal(ac.base_model_name_or_path, '../../model'); // out/adapter -> model, by hand
  const meta = JSON.parse(readFileSync(join(dir, 'lora', 'adapter', 'loom_adapter.json'), 'utf8'));
  assert.equal(meta.library, 'loom');
  assert.equal(meta.base_model, resolve(dir, 'model'));

  await train({ output_dir: 'rslora', use_rslora: true });
  const rs = adapterConfig('rslora');
  assert.equal(rs.use_rslora, true);
  assert.deepEqual(notIn(Object.keys(rs), FIELDS.LoraConfig), []);
});

test('prefix adapter_config.json keys are PrefixTuningConfig fields (current PEFT and 0.6.0)', async () => {
  await train({ output_dir: 'prefix', finetuning_type: 'prefix', num_virtual_tokens: 3 });
  const ac = adapterConfig('prefix');
  assert.deepEqual(notIn(Object.keys(ac), FIELDS.PrefixTuningConfig), []);
  assert.deepEqual(notIn(Object.keys(ac), FIELDS.older.PrefixTuningConfig), []);
});

test('a base pulled from the Hub (or whose config.json _name_or_path is a Hub id) is named by its id', async () => {
  createModelFolder(join(dir, 'pulled'), { preset: 'tiny', seed: 1 });
  writeFileSync(join(dir, 'pulled', '.loom-pull.json'), JSON.stringify({ repo: 'acme/tiny-chat', revision: 'main' }));
  await train({ output_dir: 'hub', model: 'pulled' });
  assert.equal(adapterConfig('hub').base_model_name_or_path, 'acme/tiny-chat');

  createModelFolder(join(dir, 'named'), { preset: 'tiny', seed: 1 });
  const c = JSON.parse(readFileSync(join(dir, 'named', 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'named', 'config.json'), JSON.stringify({ ...c, _name_or_path: 'acme/other-model' }));
  await train({ output_dir: 'hub2', model: 'named' });
  assert.equal(adapterConfig('hub2').base_model_name_or_path, 'acme/other-model');

  // a Loom run's merged folder of a pulled base is no longer the Hub model: named by relative path
  cpSync(join(dir, 'pulled'), join(dir, 'hub', 'merged'), { recursive: true }); // as if written by --merge
  assert.equal(hubIdOf(join(dir, 'hub', 'merged')), undefined);
  assert.equal(peftBaseName(join(dir, 'x', 'adapter'), join(dir, 'hub', 'merged')), '../../hub/merged');
});

test('after moving the project, export and adapter import find the base through the relative path', async () => {
  cpSync(dir, moved, { recursive: true });
  renameSync(join(dir, 'model'), join(dir, 'model-gone')); // the absolute path in lineage no longer exists
  try {
    const src = openExportSource(join(moved, 'lora'));
    assert.equal(src.modelDir, join(moved, 'model'));
    // independent of the loader: the base weights with the adapter merged by hand
    const a = readPeftAdapter(join(moved, 'lora', 'adapter'));
    const base = openExportSource(join(moved, 'model'));
    const named = new Map<string, Float32Named>([...base.weights].map(([n, t]) => [n, { name: n, ...t }]));
    mergeLoraInto(named, a.tensors, 16 / 8); // cfg default lora_alpha 16, lora_rank 8
    for (const [n, t] of named) assert.deepEqual(src.weights.get(n)!.data, t.data, n);

    const imp = importAdapter(join(moved, 'lora', 'adapter'));
    assert.equal(imp.base, join(moved, 'model'));

    // a PEFT export elsewhere re-points the relative path at the same base
    const e = await exportModel({ input: join(moved, 'lora'), format: 'peft', out: join(moved, 'exports', 'peft') });
    const ac = JSON.parse(readFileSync(join(e.outDir, 'adapter_config.json'), 'utf8'));
    assert.equal(ac.base_model_name_or_path, '../../model');
  } finally {
    renameSync(join(dir, 'model-gone'), join(dir, 'model'));
  }
});
