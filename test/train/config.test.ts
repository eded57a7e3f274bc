import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { loraScale, loraTargets, trainConfigSchema } from '../../src/config/train.ts';
import { isLoomError } from '../../src/core/errors.ts';

const base = { model: 'm', dataset: 'd.jsonl' };

function errorOf(v: unknown): string {
  try {
    validateConfig(trainConfigSchema, v, 'train.yaml');
  } catch (e) {
    assert.ok(isLoomError(e));
    return e.message;
  }
  assert.fail('expected a config error');
}

test('defaults follow LLaMA-Factory (lora, rank 8, alpha 2r, cosine, all-linear)', () => {
  const c = trainConfigSchema.parse(base);
  assert.equal(c.finetuning_type, 'lora');
  assert.equal(c.lora_rank, 8);
  assert.equal(c.lr_scheduler_type, 'cosine');
  assert.deepEqual(loraTargets(c), ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
  assert.deepEqual(c.dataset, ['d.jsonl']);
});

test('errors name the key and the allowed values', () => {
  const m = errorOf({ ...base, finetuning_type: 'dora' });
  assert.match(m, /finetuning_type/);
  assert.match(m, /lora, qlora, full, freeze, prefix/);
  assert.match(errorOf({ ...base, lr_scheduler_type: 'poly' }), /lr_scheduler_type.*constant, linear, cosine/);
  assert.match(errorOf({ ...base, lora_target: 'q_proj,wq' }), /lora_target.*unknown target module "wq"/);
  assert.match(errorOf({ ...base, quantization_block_size: 48 }), /quantization_block_size.*32, 64, 128/);
  assert.match(errorOf({ ...base, learning_rat: 1 }), /learning_rat/);
  assert.match(errorOf({ ...base, warmup_steps: 5, warmup_ratio: 0.1 }), /warmup_ratio/);
});

test('comma lists and rsLoRA scale', () => {
  const c = trainConfigSchema.parse({
    ...base,
    lora_target: 'q_proj, v_proj',
    lora_rank: 16,
    lora_alpha: 32,
    use_rslora: true,
  });
  assert.deepEqual(loraTargets(c), ['q_proj', 'v_proj']);
  assert.equal(loraScale({ lora_rank: 16, lora_alpha: 32, use_rslora: true }), 8);
  assert.equal(loraScale({ lora_rank: 16, lora_alpha: 32, use_rslora: false }), 2);
});
