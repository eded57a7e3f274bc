import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Registry } from '../../src/registry/db.ts';
import { tinyProject } from './helpers.ts';

const { dir } = tinyProject({ rows: 48 });
after(() => rmSync(dir, { recursive: true, force: true }));
const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const STEPS = 60;

writeFileSync(
  join(dir, 'train.yaml'),
  [
    'model: model',
    'dataset: train.jsonl',
    'eval_dataset: eval.jsonl',
    'finetuning_type: lora',
    'lora_dropout: 0.1',
    'lora_rank: 4',
    'learning_rate: 0.005',
    'lr_scheduler_type: cosine',
    'warmup_steps: 3',
    'per_device_train_batch_size: 2',
    'gradient_accumulation_steps: 2',
    'cutoff_len: 64',
    `max_steps: ${STEPS}`,
    'save_steps: 5',
    'eval_steps: 30',
    'seed: 9',
    'threads: 1',
  ].join('\n'),
);

function loom(args: string[], yaml = 'train.yaml'): ChildProcess {
  return spawn(process.execPath, ['--import', import.meta.resolve('tsx'), MAIN, 'train', yaml, ...args], {
    cwd: dir,
    env: { ...process.env, LOOM_REGISTRY: join(dir, 'registry.db'), LOOM_QUIET: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function exit(p: ChildProcess): Promise<{ code: number | null; signal: string | null; err: string }> {
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  p.stdout!.resume();
  return new Promise((res) => p.on('exit', (code, signal) => res({ code, signal, err })));
}

/** Resolves once the run's latest checkpoint is at least `step`. */
async function waitForCheckpoint(out: string, step: number, p: ChildProcess): Promise<void> {
  const ptr = join(dir, out, 'checkpoints', 'latest.json');
  for (;;) {
    if (p.exitCode !== null) throw new Error('training finished before it could be interrupted');
    if (existsSync(ptr) && JSON.parse(readFileSync(ptr, 'utf8')).step >= step) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const bytes = (out: string, f: string) => readFileSync(join(dir, out, f));

test('SIGKILL mid-run, then --resume, ends with byte-identical weights and optimiser state', async () => {
  const ref = await exit(loom(['output_dir=ref']));
  assert.equal(ref.code, 0, ref.err);

  const killed = loom(['output_dir=kill']);
  const done = exit(killed);
  await waitForCheckpoint('kill', 10, killed);
  killed.kill('SIGKILL');
  const k = await done;
  assert.equal(k.signal, 'SIGKILL');
  assert.ok(!existsSync(join(dir, 'kill', 'adapter')), 'the run was cut before it finished');

  const resumed = await exit(loom(['output_dir=kill', '--resume']));
  assert.equal(resumed.code, 0, resumed.err);
  assert.ok(
    bytes('ref', 'adapter/adapter_model.safetensors').equals(bytes('kill', 'adapter/adapter_model.safetensors')),
  );
  const last = `checkpoints/step-${String(STEPS).padStart(6, '0')}`;
  assert.ok(bytes('ref', `${last}/optimizer.safetensors`).equals(bytes('kill', `${last}/optimizer.safetensors`)));
  // metrics read like one run: one train line per step
  const lines = readFileSync(join(dir, 'kill', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.filter((l) => l.split === 'train').length, STEPS);
  const reg = new Registry(join(dir, 'registry.db'));
  const runs = reg.listRuns('train');
  assert.ok(runs.some((r) => r.status === 'finished'));
  assert.ok(reg.metrics(runs[0]!.id, 'loss').length > 0);
  reg.close();
});

test('Ctrl-C (SIGINT) saves a checkpoint before exiting; resuming matches the uninterrupted run', async () => {
  const p = loom(['output_dir=int']);
  const done = exit(p);
  await waitForCheckpoint('int', 5, p);
  p.kill('SIGINT');
  const r = await done;
  assert.equal(r.code, 130, r.err);
  assert.match(r.err, /saving a checkpoint/);
  const ptr = JSON.parse(readFileSync(join(dir, 'int', 'checkpoints', 'latest.json'), 'utf8'));
  assert.ok(ptr.step < STEPS);
  const resumed = await exit(loom(['output_dir=int', '--resume']));
  assert.equal(resumed.code, 0, resumed.err);
  if (existsSync(join(dir, 'ref', 'adapter'))) {
    assert.ok(
      bytes('ref', 'adapter/adapter_model.safetensors').equals(bytes('int', 'adapter/adapter_model.safetensors')),
    );
  }
});

// Every method, on 2 threads: an uninterrupted run and a run SIGKILLed after a checkpoint then resumed end with the
// same bytes (trainable tensors, AdamW moments, final artefact). Both runs use 2 ORT threads, so this also shows
// full fine-tuning and pretraining are deterministic at 2 threads.
const METHOD_STEPS = 30;
const METHODS: [string, string[], string][] = [
  ['lora', ['finetuning_type: lora', 'lora_dropout: 0.1'], 'adapter/adapter_model.safetensors'],
  [
    'qlora',
    ['finetuning_type: qlora', 'lora_dropout: 0.1', 'quantization_block_size: 32'],
    'adapter/adapter_model.safetensors',
  ],
  ['full', ['finetuning_type: full'], 'model/model.safetensors'],
  ['freeze', ['finetuning_type: freeze', 'freeze_trainable_layers: 1'], 'model/model.safetensors'],
  ['prefix', ['finetuning_type: prefix', 'num_virtual_tokens: 4'], 'adapter/adapter_model.safetensors'],
  ['pt', ['stage: pt', 'finetuning_type: full', 'packing: true'], 'model/model.safetensors'],
];

for (const [name, lines, artefact] of METHODS) {
  test(`${name} on 2 threads: SIGKILL mid-run, then --resume, is byte-identical to an uninterrupted run`, async () => {
    const yaml = `train-${name}.yaml`;
    writeFileSync(
      join(dir, yaml),
      [
        'model: model',
        `dataset: ${name === 'pt' ? 'corpus.jsonl' : 'train.jsonl'}`,
        ...lines,
        'learning_rate: 0.003',
        'lr_scheduler_type: cosine',
        'warmup_steps: 2',
        'per_device_train_batch_size: 2',
        'gradient_accumulation_steps: 2',
        'cutoff_len: 64',
        `max_steps: ${METHOD_STEPS}`,
        'save_steps: 3',
        'seed: 5',
        'threads: 2',
      ].join('\n'),
    );
    const ref = await exit(loom([`output_dir=${name}-ref`], yaml));
    assert.equal(ref.code, 0, ref.err);
    const killed = loom([`output_dir=${name}-kill`], yaml);
    const done = exit(killed);
    await waitForCheckpoint(`${name}-kill`, 6, killed);
    killed.kill('SIGKILL');
    assert.equal((await done).signal, 'SIGKILL');
    assert.ok(!existsSync(join(dir, `${name}-kill`, artefact)), 'the run was cut before it finished');
    const resumed = await exit(loom([`output_dir=${name}-kill`, '--resume'], yaml));
    assert.equal(resumed.code, 0, resumed.err);
    const last = `checkpoints/step-${String(METHOD_STEPS).padStart(6, '0')}`;
    for (const f of [artefact, `${last}/trainable.safetensors`, `${last}/optimizer.safetensors`]) {
      assert.ok(bytes(`${name}-ref`, f).equals(bytes(`${name}-kill`, f)), `${name}: ${f} differs after resume`);
    }
  });
}
