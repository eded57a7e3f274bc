// The generation loop: seeded determinism, batching with left padding, EOS / stop strings / max tokens,
// streaming, LocalChatModel; and scoring against the PyTorch reference logits.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../src/engine/index.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { generateIds, generateText } from '../../src/generate/generate.ts';
import { continuationLogLikelihoods, scoreIds, scoreText } from '../../src/generate/score.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { SafetensorsReader } from '../../src/models/safetensors.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');

let engine: Engine;
let work: string;
let modelDir: string;
let chat: LocalChatModel;

before(async () => {
  engine = await Engine.create({ threads: 2 });
  work = mkdtempSync(join(tmpdir(), 'loom-gen-'));
  modelDir = join(work, 'tiny');
  // Larger init than HF's 0.02 so that the random model's distributions are far from uniform.
  createModelFolder(modelDir, { preset: 'tiny', seed: 7, overrides: { initializer_range: 0.2 } });
  chat = await LocalChatModel.fromFolder(modelDir, { engine });
});

after(async () => {
  await chat.close();
  await engine.close();
  rmSync(work, { recursive: true, force: true });
});

describe('generateIds', () => {
  test('seeded sampling is deterministic and the seed matters', async () => {
    const lm = chat.lm;
    const prompt = [[5, 6, 7, 8]];
    const s = { temperature: 1, maxNewTokens: 12, seed: 42, eosIds: [] };
    const a = await generateIds(lm, prompt, s);
    const b = await generateIds(lm, prompt, s);
    assert.deepEqual(a[0]!.ids, b[0]!.ids);
    assert.equal(a[0]!.ids.length, 12);
    assert.equal(a[0]!.finishReason, 'length');
    const c = await generateIds(lm, prompt, { ...s, seed: 43 });
    assert.notDeepEqual(a[0]!.ids, c[0]!.ids);
  });

  test('a batch with left padding gives each prompt its solo output', async () => {
    const lm = chat.lm;
    const prompts = [
      [10, 11, 12, 13, 14, 15],
      [20, 21],
      [30, 31, 32, 33],
    ];
    for (const settings of [
      { temperature: 0, maxNewTokens: 8, eosIds: [] },
      { temperature: 0.9, topP: 0.95, seed: 3, maxNewTokens: 8, eosIds: [] },
    ]) {
      const batch = await generateIds(lm, prompts, settings);
      for (let i = 0; i < prompts.length; i++) {
        const solo = await generateIds(lm, [prompts[i]!], settings);
        assert.deepEqual(batch[i]!.ids, solo[0]!.ids, `prompt ${i}, temperature ${settings.temperature}`);
      }
    }
  });

  test('stops at an EOS id without emitting it', async () => {
    const lm = chat.lm;
    const ref = await generateIds(lm, [[1, 2, 3]], { temperature: 1, seed: 5, maxNewTokens: 10, eosIds: [] });
    const ids = ref[0]!.ids;
    const k = ids.findIndex((id, i) => i >= 2 && !ids.slice(0, i).includes(id));
    assert.ok(k >= 2, 'need a fresh token to use as EOS');
    const r = await generateIds(lm, [[1, 2, 3]], { temperature: 1, seed: 5, maxNewTokens: 10, eosIds: [ids[k]!] });
    assert.deepEqual(r[0]!.ids, ids.slice(0, k));
    assert.equal(r[0]!.finishReason, 'eos');
  });
});

describe('generateText', () => {
  test('stop strings cut the text, streaming pieces add up to it', async () => {
    const prompt = await chat.encodePrompt([{ role: 'user', content: 'Hello there' }]);
    const base = { temperature: 1, seed: 11, maxNewTokens: 24, eosIds: [] };
    const free = await generateText(chat.lm, chat.tokenizer, [prompt], { ...base, eosIds: [] });
    const text = free[0]!.text;
    assert.ok(text.length > 12, `generated: ${JSON.stringify(text)}`);
    const stop = text.slice(6, 9);
    const cut = text.indexOf(stop);
    const pieces: string[] = [];
    const r = await generateText(chat.lm, chat.tokenizer, [prompt], {
      ...base,
      stop: [stop],
      onText: (_row, d) => pieces.push(d),
    });
    assert.equal(r[0]!.text, text.slice(0, cut));
    assert.equal(r[0]!.finishReason, 'stop');
    assert.equal(pieces.join(''), r[0]!.text);
  });
});

describe('LocalChatModel', () => {
  test('the same seed gives the same reply text, another seed another reply (sampling on)', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me about weaving.' }];
    const s = { temperature: 1, topP: 0.95, maxNewTokens: 16 };
    const a = await chat.chat(messages, { ...s, seed: 5 });
    const b = await chat.chat(messages, { ...s, seed: 5 });
    const c = await chat.chat(messages, { ...s, seed: 6 });
    assert.ok(a.text.length > 0);
    assert.equal(b.text, a.text);
    assert.notEqual(c.text, a.text);
  });

  test('chat renders the template, generates, reports usage; stream matches', async () => {
    const messages = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'What is a loom?' },
    ];
    const r = await chat.chat(messages, { maxNewTokens: 6, temperature: 0 });
    const prompt = await chat.encodePrompt(messages);
    // The model folder's chatml template with the generation prompt, written out by hand.
    assert.equal(
      await chat.tokenizer.decode(prompt),
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is a loom?<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.equal(r.usage.promptTokens, prompt.length);
    assert.ok(r.usage.completionTokens >= 1 && r.usage.completionTokens <= 6);
    let streamed = '';
    const s = await chat.chatStream(messages, { maxNewTokens: 6, temperature: 0 }, (d) => {
      streamed += d;
    });
    assert.equal(s.text, r.text);
    assert.equal(streamed, r.text);
    const [b0, b1] = await chat.chatBatch([messages, [{ role: 'user', content: 'Hi' }]], {
      maxNewTokens: 6,
      temperature: 0,
    });
    assert.equal(b0!.text, r.text);
    assert.ok(b1);
  });

  test('logLikelihood equals summed per-token scores of the joined text', async () => {
    const ll = await chat.logLikelihood('The cat sat on', [' the mat', ' a hat today']);
    for (const [i, cont] of [' the mat', ' a hat today'].entries()) {
      const ctx = await chat.tokenizer.encode('The cat sat on', { addSpecialTokens: true });
      const whole = await chat.tokenizer.encode(`The cat sat on${cont}`, { addSpecialTokens: true });
      const { logprobs } = await scoreIds(chat.lm, whole);
      const expected = logprobs.slice(ctx.length).reduce((a: number, b) => a + (b as number), 0);
      assert.ok(Math.abs(ll[i]! - expected) < 1e-4, `${ll[i]} vs ${expected}`);
    }
  });
});

describe('scoring against the PyTorch reference', () => {
  test('per-token log-probs equal log_softmax of the reference logits', async () => {
    const dir = join(FIXTURES, 'qwen2');
    const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as { input_ids: number[][] };
    const ref = SafetensorsReader.open(join(dir, 'outputs.safetensors'));
    const logits = ref.readFloat32('logits');
    ref.close();
    const [, T, V] = logits.dims as [number, number, number];
    const lm = await CausalLM.fromFolder(dir, { engine });
    const ids = inputs.input_ids[1]!;
    const { logprobs } = await scoreIds(lm, ids);
    assert.equal(logprobs[0], null);
    for (let t = 1; t < ids.length; t++) {
      const row = logits.data.subarray((T + t - 1) * V, (T + t) * V);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let sum = 0;
      for (const x of row) sum += Math.exp(x - max);
      const expected = row[ids[t]!]! - max - Math.log(sum);
      assert.ok(Math.abs((logprobs[t] as number) - expected) < 1e-4, `token ${t}`);
    }
    // Batched continuations (left-padded) agree with the same sums.
    const [ll] = await continuationLogLikelihoods(lm, ids.slice(0, 3), [ids.slice(3)]);
    const expected = (logprobs.slice(3) as number[]).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(ll! - expected) < 1e-4);
    await lm.close();
  });

  test('scoreText shows a token holding part of a character by its bytes', async () => {
    // The tiny vocabulary has no CJK merges: 你 (U+4F60, UTF-8 E4 BD A0) is three byte tokens.
    const s = await scoreText(chat.lm, chat.tokenizer, '你 hello', { addSpecialTokens: false });
    assert.deepEqual(
      s.tokens.slice(0, 3).map((t) => t.token),
      ['<0xE4>', '<0xBD>', '<0xA0>'],
    );
    assert.equal(
      s.tokens
        .slice(3)
        .map((t) => t.token)
        .join(''),
      ' hello',
    );
    assert.equal(s.count, s.tokens.length - 1);
    assert.ok(Math.abs(s.perplexity! - Math.exp(-s.sumLogprob / s.count)) < 1e-9);
  });
});
