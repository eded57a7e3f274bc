import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dataStage } from '../../src/data/quickstart.ts';
import { trainStage } from '../../src/train/quickstart.ts';

/**
 * The quickstart's train stage with its own configs (examples/customer-service/train-pretrain.yaml and
 * train-lora.yaml), shortened: pretraining from nothing must lower the validation loss on held-out chats rendered
 * as text, and LoRA SFT of the pretrained model must lower the validation loss on held-out assistant turns.
 */
const out = mkdtempSync(join(tmpdir(), 'loom-qs-train-'));
after(() => rmSync(out, { recursive: true, force: true }));

test('quickstart train stage: pretraining and LoRA SFT lower the validation loss', async (t) => {
  await dataStage(out);
  const r = await trainStage(out, {
    pretrain: ['max_steps=150', 'eval_steps=150'],
    lora: ['max_steps=60', 'eval_steps=60'],
    threads: 2,
  });
  assert.ok(r.pretrain && r.lora, r.summary);
  t.diagnostic(r.summary);
  const pt = { before: r.pretrain.initialEvalLoss!, after: r.finalEvalLoss!.pretrain! };
  const lora = { before: r.lora.initialEvalLoss!, after: r.finalEvalLoss!.lora! };
  // from ln(2048) = 7.6 for a random model with the trained 2048-token vocabulary
  assert.ok(pt.after < pt.before - 2, `pretrain validation loss ${pt.before} -> ${pt.after}`);
  assert.ok(lora.after < lora.before - 0.3, `LoRA validation loss ${lora.before} -> ${lora.after}`);
  assert.match(r.summary, /validation loss/);
});
