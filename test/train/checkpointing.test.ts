// gradient_checkpointing and loss_chunks change how the step graph computes, not what: one training step (loss,
// grad norm, updated parameters) with each equals the plain graph's, for the methods whose hooks live inside a
// decoder layer (LoRA with dropout inputs, QLoRA's 4-bit base, prefix key/values).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import type { MethodOptions } from '../../src/train/options.ts';
import { maxRel, tinyProject, trainStep } from './helpers.ts';

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

for (const o of methods) {
  test(`${o.method}: a step with gradient checkpointing and a chunked loss equals the plain step`, async () => {
    const plain = await trainStep(dir, { ...o, lossChunks: 1, gradientCheckpointing: false });
    const both = await trainStep(dir, { ...o, lossChunks: 3, gradientCheckpointing: true });
    assert.deepEqual(Object.keys(both).sort(), Object.keys(plain).sort());
    const gn = (plain.grad_norm!.data as Float32Array)[0]!;
    assert.ok(gn > 0, 'the step has gradients');
    for (const k of Object.keys(plain)) {
      assert.ok(maxRel(both[k]!, plain[k]!) <= 1e-5, `${k}: relative difference ${maxRel(both[k]!, plain[k]!)}`);
    }
  });
}
