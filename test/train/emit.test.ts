import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { emitJob } from '../../src/train/emit.ts';
import { cfg, tinyProject } from './helpers.ts';

const { dir } = tinyProject({ rows: 4 });
after(() => rmSync(dir, { recursive: true, force: true }));
const settings = {
  finetuning_type: 'lora',
  lora_rank: 16,
  lora_alpha: 32,
  lora_dropout: 0.05,
  lora_target: 'q_proj,v_proj',
  use_rslora: true,
  learning_rate: 2e-4,
  lr_scheduler_type: 'cosine',
  min_lr: 2e-5,
  warmup_ratio: 0.1,
  max_grad_norm: 0.5,
  num_train_epochs: 2,
  max_steps: undefined,
  cutoff_len: 512,
  template: 'qwen',
  gradient_accumulation_steps: 4,
  weight_decay: 0.01,
  packing: true,
};

test('LLaMA-Factory: train.yaml + dataset_info.json carry every setting; multi-node uses ZeRO and torchrun', () => {
  const out = join(dir, 'lf');
  const r = emitJob(cfg(settings), {
    target: 'llamafactory',
    outDir: out,
    nodes: 2,
    gpus: 8,
    baseDir: dir,
    modelType: 'qwen2',
  });
  const y = parseYaml(readFileSync(join(out, 'train.yaml'), 'utf8'));
  assert.equal(y.stage, 'sft');
  assert.equal(y.finetuning_type, 'lora');
  assert.equal(y.lora_rank, 16);
  assert.equal(y.lora_alpha, 32);
  assert.equal(y.lora_dropout, 0.05);
  assert.equal(y.lora_target, 'q_proj,v_proj');
  assert.equal(y.use_rslora, true);
  assert.equal(y.learning_rate, 2e-4);
  assert.equal(y.lr_scheduler_type, 'cosine_with_min_lr');
  assert.deepEqual(y.lr_scheduler_kwargs, { min_lr: 2e-5 });
  assert.equal(y.warmup_ratio, 0.1);
  assert.equal(y.max_grad_norm, 0.5);
  assert.equal(y.num_train_epochs, 2);
  assert.equal(y.cutoff_len, 512);
  assert.equal(y.template, 'qwen');
  assert.equal(y.packing, true);
  assert.equal(y.gradient_accumulation_steps, 4);
  assert.equal(y.deepspeed, 'ds_z2_config.json');
  const info = JSON.parse(readFileSync(join(out, 'data', 'dataset_info.json'), 'utf8'));
  assert.equal(info[y.dataset].formatting, 'sharegpt');
  assert.equal(info[y.dataset].tags.role_tag, 'role');
  const ds = JSON.parse(readFileSync(join(out, 'ds_z2_config.json'), 'utf8'));
  assert.equal(ds.zero_optimization.stage, 2);
  assert.ok(r.launch.some((l) => l.includes('NNODES=2') && l.includes('NPROC_PER_NODE=8')));
  assert.ok(r.launch.some((l) => l.startsWith('torchrun --nnodes 2 --nproc_per_node 8')));
});

test('Axolotl: YAML carries the settings; qlora and fsdp', () => {
  const out = join(dir, 'ax');
  emitJob(cfg({ ...settings, finetuning_type: 'qlora' }), {
    target: 'axolotl',
    outDir: out,
    nodes: 1,
    gpus: 4,
    distributed: 'fsdp',
    baseDir: dir,
  });
  const y = parseYaml(readFileSync(join(out, 'axolotl.yaml'), 'utf8'));
  assert.equal(y.adapter, 'qlora');
  assert.equal(y.load_in_4bit, true);
  assert.equal(y.lora_r, 16);
  assert.equal(y.lora_alpha, 32);
  assert.deepEqual(y.lora_target_modules, ['q_proj', 'v_proj']);
  assert.equal(y.peft_use_rslora, true);
  assert.equal(y.sequence_len, 512);
  assert.equal(y.sample_packing, true);
  assert.equal(y.lr_scheduler, 'cosine');
  assert.equal(y.cosine_min_lr_ratio, 0.1);
  assert.equal(y.max_grad_norm, 0.5);
  assert.equal(y.num_epochs, 2);
  assert.equal(y.chat_template, 'qwen');
  assert.equal(y.datasets[0].type, 'chat_template');
  assert.deepEqual(y.datasets[0].roles_to_train, ['assistant']);
  assert.equal(y.fsdp_version, 2);
});

test('TRL: the script compiles and carries the settings; multi-GPU writes an accelerate config', () => {
  const out = join(dir, 'trl');
  const r = emitJob(cfg({ ...settings, finetuning_type: 'prefix', num_virtual_tokens: 12, packing: false }), {
    target: 'trl',
    outDir: out,
    nodes: 1,
    gpus: 2,
    baseDir: dir,
  });
  const py = readFileSync(join(out, 'train_trl.py'), 'utf8');
  for (const s of [
    'PrefixTuningConfig(num_virtual_tokens=12',
    'learning_rate=0.0002',
    'max_grad_norm=0.5',
    'max_length=512',
    'lr_scheduler_type="cosine_with_min_lr"',
    'num_train_epochs=2',
    'assistant_only_loss=True',
    'warmup_ratio=0.1',
  ]) {
    assert.ok(py.includes(s), `script has ${s}`);
  }
  const c = spawnSync('python3', ['-m', 'py_compile', join(out, 'train_trl.py')], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const acc = parseYaml(readFileSync(join(out, 'accelerate.yaml'), 'utf8'));
  assert.equal(acc.num_processes, 2);
  assert.equal(acc.distributed_type, 'DEEPSPEED');
  assert.ok(r.launch[0]!.startsWith('accelerate launch --config_file accelerate.yaml'));
  const lora = emitJob(cfg(settings), { target: 'trl', outDir: join(dir, 'trl2'), nodes: 1, gpus: 1, baseDir: dir });
  const py2 = readFileSync(join(dir, 'trl2', 'train_trl.py'), 'utf8');
  assert.ok(
    py2.includes(
      'LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], use_rslora=True',
    ),
  );
  assert.equal(spawnSync('python3', ['-m', 'py_compile', join(dir, 'trl2', 'train_trl.py')]).status, 0);
  assert.deepEqual(lora.launch, ['python3 train_trl.py']);
});

test('targets without prefix tuning refuse it with a hint', () => {
  assert.throws(
    () =>
      emitJob(cfg({ finetuning_type: 'prefix' }), {
        target: 'llamafactory',
        outDir: join(dir, 'x'),
        nodes: 1,
        gpus: 1,
        baseDir: dir,
      }),
    /no prefix tuning/,
  );
});
