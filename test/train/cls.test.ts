// Stage cls (sequence classification): a tiny run on a separable synthetic dataset must learn it; the head's loss
// and gradient are checked against a float64 softmax cross-entropy written here, on the pooled hidden state the
// graph itself exposes; the exported folder is an HF classification folder.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { trainConfigSchema } from '../../src/config/train.ts';
import { Engine, grad, type HostTensor, toOnnx } from '../../src/engine/index.ts';
import { evalClassifier } from '../../src/eval/cls/index.ts';
import { presetConfig, toHfConfig } from '../../src/models/config.ts';
import { createModelFolder, newModel } from '../../src/models/folder.ts';
import { buildLlama } from '../../src/models/llama.ts';
import { SafetensorsReader } from '../../src/models/safetensors.ts';
import { runTraining } from '../../src/train/trainer.ts';

const dir = mkdtempSync(join(tmpdir(), 'loom-cls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Three intents, each with its own keywords, padded with shared filler words: separable, not trivial to tokenize.
const KEYS: Record<string, string[]> = {
  shipping: ['where is my parcel', 'track my delivery', 'when does it ship', 'courier status'],
  refund: ['refund my money', 'i want my money back', 'return and refund', 'refund the payment'],
  account: ['reset my password', 'change my email', 'log in problem', 'delete my account'],
};
const FILLER = ['hello', 'please', 'thanks', 'today', 'quickly', 'again', 'order 42', 'hi there'];

function rows(n: number, seed: number): string[] {
  let s = seed;
  const r = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const out: string[] = [];
  const labels = Object.keys(KEYS);
  for (let i = 0; i < n; i++) {
    const label = labels[i % labels.length]!;
    const k = KEYS[label]![Math.floor(r() * 4)]!;
    const f1 = FILLER[Math.floor(r() * FILLER.length)]!;
    const f2 = FILLER[Math.floor(r() * FILLER.length)]!;
    out.push(JSON.stringify({ text: r() < 0.5 ? `${f1} ${k} ${f2}` : `${k}, ${f1}`, label }));
  }
  return out;
}

before(() => {
  writeFileSync(join(dir, 'train.jsonl'), `${rows(96, 7).join('\n')}\n`);
  writeFileSync(join(dir, 'dev.jsonl'), `${rows(30, 99).join('\n')}\n`);
  createModelFolder(join(dir, 'base'), { preset: 'tiny', seed: 1 });
});

const base = {
  dataset: 'train.jsonl',
  stage: 'cls',
  per_device_train_batch_size: 8,
  cutoff_len: 32,
  lr_scheduler_type: 'constant',
  seed: 3,
};

describe('stage cls: training', () => {
  test('from scratch (own tokenizer, full): separable intents learned, HF classification folder written', async () => {
    const config = trainConfigSchema.parse({
      ...base,
      model: 'scratch-model',
      output_dir: 'out-scratch',
      finetuning_type: 'full',
      train_tokenizer: true,
      tokenizer_vocab_size: 300,
      model_preset: 'tiny',
      learning_rate: 3e-3,
      max_steps: 48,
    });
    const r = await runTraining({ config, baseDir: dir, quiet: true, threads: 1, probe: 'quick' });
    assert.ok(r.lastLoss! < r.firstLoss! * 0.5, `loss ${r.firstLoss} -> ${r.lastLoss}`);
    const model = join(dir, 'out-scratch', 'model');
    const cfg = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
    assert.deepEqual(cfg.architectures, ['LlamaForSequenceClassification']);
    assert.deepEqual(cfg.id2label, { 0: 'account', 1: 'refund', 2: 'shipping' });
    assert.deepEqual(cfg.label2id, { account: 0, refund: 1, shipping: 2 });
    const st = SafetensorsReader.open(model);
    assert.deepEqual(st.info('score.weight').shape, [3, cfg.hidden_size]);
    assert.equal(st.has('lm_head.weight'), false);
    st.close();
    const ev = await evalClassifier(model, join(dir, 'dev.jsonl'), { threads: 1 });
    assert.ok(ev.report.accuracy >= 0.9, `dev accuracy ${ev.report.accuracy}`);
    assert.ok(ev.report.macro.f1 >= 0.9, `dev macro F1 ${ev.report.macro.f1}`);
  });

  test('LoRA on a base model: head trained in full, PEFT SEQ_CLS adapter plus merged folder', async () => {
    const config = trainConfigSchema.parse({
      ...base,
      model: 'base',
      output_dir: 'out-lora',
      finetuning_type: 'lora',
      lora_rank: 8,
      learning_rate: 3e-3,
      max_steps: 48,
    });
    const r = await runTraining({ config, baseDir: dir, quiet: true, threads: 1, probe: 'quick' });
    const names = r.params.map((p) => p.name);
    assert.ok(names.includes('score.weight'));
    assert.ok(names.some((n) => n.endsWith('q_proj.lora_A.weight')));
    const ad = JSON.parse(readFileSync(join(dir, 'out-lora', 'adapter', 'adapter_config.json'), 'utf8'));
    assert.equal(ad.task_type, 'SEQ_CLS');
    assert.deepEqual(ad.modules_to_save, ['score']);
    const st = SafetensorsReader.open(join(dir, 'out-lora', 'adapter', 'adapter_model.safetensors'));
    assert.ok(st.has('base_model.model.score.weight'));
    st.close();
    const ev = await evalClassifier(join(dir, 'out-lora', 'model'), join(dir, 'dev.jsonl'), { threads: 1 });
    assert.ok(ev.report.accuracy >= 0.9, `dev accuracy ${ev.report.accuracy}`);
  });

  test('config refusals name the field', () => {
    assert.throws(
      () => trainConfigSchema.parse({ ...base, model: 'base', finetuning_type: 'prefix' }),
      /finetuning_type/,
    );
    assert.throws(() => trainConfigSchema.parse({ ...base, model: 'base', packing: true }), /packing/);
    assert.throws(() => trainConfigSchema.parse({ model: 'base', dataset: 'x', labels: ['a', 'b'] }), /labels/);
  });

  test('a label outside the configured classes names file and line', async () => {
    writeFileSync(join(dir, 'bad.jsonl'), '{"text":"a","label":"x"}\n{"text":"b","label":"zzz"}\n');
    const config = trainConfigSchema.parse({
      ...base,
      model: 'base',
      dataset: 'bad.jsonl',
      labels: ['x', 'y'],
      output_dir: 'out-bad',
    });
    await assert.rejects(
      runTraining({ config, baseDir: dir, quiet: true, threads: 1, probe: 'quick' }),
      (e: Error & { line?: number; field?: string }) => e.line === 2 && e.field === 'label',
    );
  });
});

describe('stage cls: head loss and gradient against a float64 reference', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.create({ threads: 1 });
  });
  after(async () => {
    await engine.close();
  });

  test('pooled last-token softmax CE and dL/dscore match; right padding changes nothing', async () => {
    const labels = ['a', 'b', 'c'];
    const cfg = { ...presetConfig('tiny'), labels };
    assert.deepEqual(toHfConfig(cfg).architectures, ['LlamaForSequenceClassification']);
    const weights = newModel(cfg, 5);
    const m = buildLlama(cfg, weights, {
      trainable: (n) => n === 'score.weight' || n === 'model.norm.weight',
      attentionMask: 'none',
      logits: 'none',
      loss: true,
      labelsShifted: true,
      lossWeights: true,
      hidden: true,
    });
    const wrt = m.trainable.map((n) => m.params.get(n)!);
    grad(m.loss!, wrt).forEach((gr, i) => {
      m.graph.output(`grad.${m.trainable[i]}`, gr);
    });
    const session = await engine.load(toOnnx(m.graph));
    // Two rows of different lengths, right-padded with token 0; the label sits at each row's last real token.
    const rowsIds = [
      [5, 17, 99, 3, 250],
      [8, 41, 7],
    ];
    const gold = [2, 0];
    const run = async (T: number) => {
      const B = rowsIds.length;
      const ids = new BigInt64Array(B * T);
      const lab = new BigInt64Array(B * T).fill(-100n);
      const lw = new Float32Array(B * T);
      const pos = new BigInt64Array(B * T);
      rowsIds.forEach((r, b) => {
        for (let t = 0; t < T; t++) {
          ids[b * T + t] = BigInt(r[t] ?? 0);
          pos[b * T + t] = BigInt(t);
        }
        lab[b * T + r.length - 1] = BigInt(gold[b]!);
        lw[b * T + r.length - 1] = 1;
      });
      const feeds: Record<string, HostTensor> = {
        input_ids: { dtype: 'int64', dims: [B, T], data: ids },
        labels: { dtype: 'int64', dims: [B, T], data: lab },
        loss_weights: { dtype: 'float32', dims: [B, T], data: lw },
        position_ids: { dtype: 'int64', dims: [B, T], data: pos },
        'score.weight': weights.get('score.weight')!,
        'model.norm.weight': weights.get('model.norm.weight')!,
      };
      return session.run(feeds);
    };
    const out = await run(5);
    const H = cfg.hiddenSize;
    const hidden = out.last_hidden_state!.data as Float32Array;
    const W = weights.get('score.weight')!.data as Float32Array;
    // float64 reference: logits = W h_last, p = softmax, loss = mean -log p[gold], dW = mean (p - onehot) h^T
    let loss = 0;
    const dW = new Float64Array(labels.length * H);
    rowsIds.forEach((r, b) => {
      const h = Array.from(hidden.subarray((b * 5 + r.length - 1) * H, (b * 5 + r.length) * H));
      const z = labels.map((_, c) => h.reduce((s, x, k) => s + x * W[c * H + k]!, 0));
      const mx = Math.max(...z);
      const e = z.map((x) => Math.exp(x - mx));
      const sum = e.reduce((a, x) => a + x, 0);
      const p = e.map((x) => x / sum);
      loss += -Math.log(p[gold[b]!]!) / rowsIds.length;
      for (let c = 0; c < labels.length; c++)
        for (let k = 0; k < H; k++) dW[c * H + k]! += ((p[c]! - (c === gold[b] ? 1 : 0)) * h[k]!) / rowsIds.length;
    });
    const got = (out.loss!.data as Float32Array)[0]!;
    assert.ok(Math.abs(got - loss) < 1e-5, `loss ${got} vs reference ${loss}`);
    const g = out['grad.score.weight']!.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < dW.length; i++) worst = Math.max(worst, Math.abs(g[i]! - dW[i]!));
    assert.ok(worst < 1e-6, `dL/dscore max abs diff ${worst}`);
    // Padding the batch further must not change the loss or any gradient (causal attention, pooled last real token).
    const padded = await run(9);
    assert.ok(Math.abs((padded.loss!.data as Float32Array)[0]! - got) < 1e-6);
    const gn = out['grad.model.norm.weight']!.data as Float32Array;
    const gp = padded['grad.model.norm.weight']!.data as Float32Array;
    let d = 0;
    for (let i = 0; i < gn.length; i++) d = Math.max(d, Math.abs(gn[i]! - gp[i]!));
    assert.ok(d < 1e-6, `dL/dnorm changed by padding: ${d}`);
    assert.ok(
      gn.some((x) => Math.abs(x) > 1e-6),
      'the gradient reaches the body',
    );
    await session.release();
  });
});

test('existsSync sanity for the temp project', () => {
  assert.ok(existsSync(join(dir, 'train.jsonl')));
});
