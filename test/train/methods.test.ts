import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createModelFolder } from '../../src/models/folder.ts';
import { runTraining } from '../../src/train/trainer.ts';
import { cfg, tinyProject } from './helpers.ts';

const { dir } = tinyProject();
after(() => rmSync(dir, { recursive: true, force: true }));

async function lossDrop(
  over: Record<string, unknown>,
): Promise<{ first: number; last: number; evalBefore?: number; evalAfter?: number }> {
  const r = await runTraining({ config: cfg(over), baseDir: dir, quiet: true, threads: 1, probe: 'quick' });
  return { first: r.firstLoss!, last: r.lastLoss!, evalBefore: r.initialEvalLoss, evalAfter: r.bestEvalLoss };
}

for (const [method, lr] of [
  ['lora', 1e-2],
  ['qlora', 1e-2],
  ['full', 3e-3],
  ['freeze', 3e-3],
  ['prefix', 3e-2],
] as const) {
  test(`${method} lowers the validation loss on a small task`, async () => {
    const r = await lossDrop({
      finetuning_type: method,
      learning_rate: lr,
      output_dir: `out-${method}`,
      eval_dataset: 'eval.jsonl',
      eval_steps: 12,
      freeze_trainable_layers: 1,
      use_rslora: method === 'qlora',
    });
    assert.ok(r.evalAfter! < r.evalBefore! - 0.05, `${method}: eval loss ${r.evalBefore} -> ${r.evalAfter}`);
    assert.ok(r.last < r.first, `${method}: train loss ${r.first} -> ${r.last}`);
  });
}

test('pretraining (stage pt) on {"text"} rows with document packing lowers the loss', async () => {
  const r = await lossDrop({
    stage: 'pt',
    dataset: 'corpus.jsonl',
    finetuning_type: 'full',
    learning_rate: 3e-3,
    output_dir: 'out-pt',
    val_size: 0.2,
    eval_steps: 12,
  });
  assert.ok(r.evalAfter! < r.evalBefore! - 0.1, `pt: ${r.evalBefore} -> ${r.evalAfter}`);
});

test('gradient accumulation of 2x2 equals one batch of 4 (loss normalised over the whole window)', async () => {
  const a = await runTraining({
    config: cfg({ output_dir: 'acc-a', max_steps: 3, per_device_train_batch_size: 4 }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
  const b = await runTraining({
    config: cfg({ output_dir: 'acc-b', max_steps: 3, per_device_train_batch_size: 2, gradient_accumulation_steps: 2 }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
  let worst = 0;
  a.params.forEach((p, i) => {
    const q = b.params[i]!;
    for (let k = 0; k < p.data.length; k++) worst = Math.max(worst, Math.abs(p.data[k]! - q.data[k]!));
  });
  assert.ok(worst < 1e-5, `max weight difference ${worst}`);
  assert.ok(Math.abs(a.firstLoss! - b.firstLoss!) < 1e-5);
});

test('packing and lora dropout train, run folder has metrics, chart, lineage and a PEFT adapter', async () => {
  const r = await runTraining({
    config: cfg({ output_dir: 'out-pack', packing: true, lora_dropout: 0.1, learning_rate: 1e-2, cutoff_len: 128 }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
  assert.ok(r.lastLoss! < r.firstLoss!);
  const out = join(dir, 'out-pack');
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 12);
  assert.ok(readFileSync(join(out, 'loss.html'), 'utf8').includes('<svg'));
  const lineage = JSON.parse(readFileSync(join(out, 'lineage.json'), 'utf8'));
  assert.match(lineage.dataset_hash, /^[0-9a-f]{64}$/);
  const ac = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
  assert.equal(ac.peft_type, 'LORA');
  assert.ok(existsSync(join(out, 'checkpoints', 'step-000012', 'state.json')));
});

test('early stopping stops after `patience` evaluations without improvement', async () => {
  // lr 0.5 without clipping makes the validation loss rise after the first steps (seeded, deterministic)
  const r = await runTraining({
    config: cfg({
      output_dir: 'out-es',
      learning_rate: 0.5,
      max_grad_norm: 0,
      eval_dataset: 'eval.jsonl',
      eval_steps: 1,
      early_stopping_patience: 2,
      max_steps: 40,
      finetuning_type: 'full',
    }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
  assert.ok(r.earlyStopped, 'expected an early stop');
  assert.ok(r.steps < 40);
  const best = JSON.parse(readFileSync(join(dir, 'out-es', 'checkpoints', 'best.json'), 'utf8'));
  assert.equal(best.eval_loss, r.bestEvalLoss);
  assert.ok(existsSync(join(dir, 'out-es', 'checkpoints', best.checkpoint, 'state.json')), 'best checkpoint kept');
});

test('refusals: merging a QLoRA adapter, prefix tuning with packing', async () => {
  await assert.rejects(
    runTraining({ config: cfg({ finetuning_type: 'qlora' }), baseDir: dir, merge: true, quiet: true }),
    /cannot merge a QLoRA adapter/,
  );
  await assert.rejects(
    runTraining({ config: cfg({ finetuning_type: 'prefix', packing: true }), baseDir: dir, quiet: true }),
    /prefix tuning cannot be combined with packing/,
  );
});

test('pretraining from nothing: trains a BPE tokenizer on the corpus, builds the model, lowers the loss', async () => {
  const r = await runTraining({
    config: cfg({
      stage: 'pt',
      model: 'scratch',
      dataset: 'corpus.jsonl',
      train_tokenizer: true,
      tokenizer_vocab_size: 300,
      finetuning_type: 'full',
      learning_rate: 3e-3,
      output_dir: 'out-scratch',
    }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
  });
  const tok = JSON.parse(readFileSync(join(dir, 'scratch', 'tokenizer.json'), 'utf8'));
  const vocab = Object.keys(tok.model.vocab).length;
  assert.ok(vocab > 259 && vocab <= 300, `vocab ${vocab}`);
  const conf = JSON.parse(readFileSync(join(dir, 'scratch', 'config.json'), 'utf8'));
  assert.equal(conf.vocab_size, vocab);
  assert.ok(r.lastLoss! < r.firstLoss! - 0.5, `${r.firstLoss} -> ${r.lastLoss}`);
});

test('rows that fail the data linter are refused with file:line', async () => {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    join(dir, 'bad.jsonl'),
    `${JSON.stringify({
      messages: [
        { role: 'assistant', content: 'hi' },
        { role: 'assistant', content: 'again' },
      ],
    })}\n`,
  );
  await assert.rejects(
    runTraining({ config: cfg({ dataset: 'bad.jsonl' }), baseDir: dir, quiet: true }),
    (e: Error & { code?: string; line?: number }) => {
      assert.equal(e.code, 'DATA_LINT');
      assert.equal(e.line, 1);
      return true;
    },
  );
});

test('full fine-tuning and pretraining on 2 threads: two runs with one seed give identical weights', async () => {
  // A wider embedding (512) than the tiny preset: ORT's threaded ScatterND(add) raced on repeated token ids at this
  // width, so the tied embedding's gradient (and then every weight) drifted between runs.
  createModelFolder(join(dir, 'model-wide'), {
    preset: 'tiny',
    seed: 1,
    overrides: { hidden_size: 512, intermediate_size: 256, num_hidden_layers: 1 },
  });
  for (const over of [
    { finetuning_type: 'full' },
    { stage: 'pt', dataset: 'corpus.jsonl', finetuning_type: 'full', packing: true },
  ]) {
    const run = (name: string) =>
      runTraining({
        config: cfg({
          ...over,
          model: 'model-wide',
          output_dir: name,
          max_steps: 8,
          learning_rate: 3e-3,
          per_device_train_batch_size: 8,
        }),
        baseDir: dir,
        quiet: true,
        threads: 2,
        probe: 'quick',
      });
    const a = await run(`det-a-${over.finetuning_type}-${'stage' in over}`);
    const b = await run(`det-b-${over.finetuning_type}-${'stage' in over}`);
    a.params.forEach((p, i) => {
      const q = b.params[i]!;
      assert.ok(
        Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).equals(
          Buffer.from(q.data.buffer, q.data.byteOffset, q.data.byteLength),
        ),
        `${JSON.stringify(over)}: ${p.name} differs between two seeded runs`,
      );
    });
  }
});
