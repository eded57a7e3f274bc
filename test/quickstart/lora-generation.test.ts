import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { trainConfigSchema } from '../../src/config/train.ts';
import { Chrf } from '../../src/eval/metrics/index.ts';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { runTraining } from '../../src/train/trainer.ts';

/**
 * A LoRA trained on a small learnable task must improve a held-out generation metric over its base. The task: a
 * support question names one of three topics among filler words; the answer is that topic's fixed reply. Held-out
 * questions use filler words that never occur in training, so the LoRA has to pick up the topic word, not
 * memorise prompts. Scored as the eval stage scores answers: greedy generation, corpus chrF and exact match.
 */
const ANSWERS: Record<string, string> = {
  refund: 'Refunds arrive in 3 days.',
  shipping: 'Your parcel ships tomorrow.',
  invoice: 'Invoices are under My Orders.',
};
const TRAIN_FILLERS = ['hello', 'please', 'quick', 'question', 'about', 'my', 'order', 'today', 'thanks', 'hi'];
const HELD_OUT_FILLERS = ['urgent', 'again', 'kindly', 'sorry', 'need', 'help', 'now', 'yesterday'];

function rows(fillers: string[], n: number, seed: number): { user: string; answer: string }[] {
  let s = seed;
  const next = (k: number): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % k;
  };
  const topics = Object.keys(ANSWERS);
  return Array.from({ length: n }, (_, i) => {
    const topic = topics[i % topics.length]!;
    const words = [
      fillers[next(fillers.length)]!,
      fillers[next(fillers.length)]!,
      topic,
      fillers[next(fillers.length)]!,
    ];
    // the topic word moves around: position 2 or 3 of 4
    if (next(2) === 1) [words[2], words[3]] = [words[3]!, words[2]!];
    return { user: words.join(' '), answer: ANSWERS[topic]! };
  });
}

const dir = mkdtempSync(join(tmpdir(), 'loom-qs-lora-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function score(
  modelDir: string,
  items: { user: string; answer: string }[],
): Promise<{ chrf: number; em: number }> {
  const m = await LocalChatModel.fromFolder(modelDir, { threads: 1 });
  try {
    const hyps: string[] = [];
    for (const it of items) {
      const r = await m.chat([{ role: 'user', content: it.user }], { maxNewTokens: 24, temperature: 0 });
      hyps.push(r.text.trim());
    }
    const chrf = new Chrf().corpusScore(hyps, [items.map((it) => it.answer)]).score;
    const em = hyps.filter((h, i) => h === items[i]!.answer).length / items.length;
    return { chrf, em };
  } finally {
    await m.close?.();
  }
}

test('LoRA SFT on a small learnable task improves held-out chrF and exact match over its base', async (t) => {
  // The base is pretrained first, as in the quickstart: a random model's frozen embeddings (std 0.02, tied) and
  // final norm cap its logits near ±1.3, so a LoRA on a random model cannot make a confident prediction at all.
  createModelFolder(join(dir, 'random'), { preset: 'tiny', seed: 1 });
  const corpus = readFileSync(
    fileURLToPath(new URL('../../src/tokenizer/assets/tiny/corpus.txt', import.meta.url)),
    'utf8',
  )
    .split('\n')
    .filter((l) => l.trim());
  writeFileSync(join(dir, 'corpus.jsonl'), `${corpus.map((text) => JSON.stringify({ text })).join('\n')}\n`);
  const pt = trainConfigSchema.parse({
    model: 'random',
    dataset: 'corpus.jsonl',
    output_dir: 'pretrain',
    stage: 'pt',
    finetuning_type: 'full',
    cutoff_len: 64,
    per_device_train_batch_size: 8,
    learning_rate: 3e-3,
    max_steps: 200,
    seed: 1,
  });
  await runTraining({ config: pt, baseDir: dir, quiet: true, threads: 1 });
  const base = join(dir, 'pretrain', 'model');

  const toJsonl = (xs: { user: string; answer: string }[]): string =>
    `${xs
      .map((x) =>
        JSON.stringify({
          messages: [
            { role: 'user', content: x.user },
            { role: 'assistant', content: x.answer },
          ],
        }),
      )
      .join('\n')}\n`;
  writeFileSync(join(dir, 'train.jsonl'), toJsonl(rows(TRAIN_FILLERS, 96, 7)));
  const heldOut = rows(HELD_OUT_FILLERS, 12, 99);
  const config = trainConfigSchema.parse({
    model: base,
    dataset: 'train.jsonl',
    output_dir: 'lora',
    finetuning_type: 'lora',
    lora_rank: 16,
    cutoff_len: 64,
    per_device_train_batch_size: 8,
    learning_rate: 1e-2,
    lr_scheduler_type: 'cosine',
    max_steps: 200,
    seed: 5,
  });
  const r = await runTraining({ config, baseDir: dir, quiet: true, merge: true, threads: 1 });
  assert.ok(r.lastLoss! < r.firstLoss! / 4, `train loss ${r.firstLoss} -> ${r.lastLoss}`);
  const before = await score(base, heldOut);
  const after = await score(join(dir, 'lora', 'merged'), heldOut);
  t.diagnostic(
    `held-out chrF ${before.chrf.toFixed(1)} -> ${after.chrf.toFixed(1)}, exact match ${before.em} -> ${after.em}`,
  );
  assert.ok(
    after.chrf >= before.chrf + 40,
    `held-out chrF base ${before.chrf.toFixed(1)} -> LoRA ${after.chrf.toFixed(1)}`,
  );
  assert.ok(after.em >= 0.75, `held-out exact match base ${before.em} -> LoRA ${after.em}`);
});
