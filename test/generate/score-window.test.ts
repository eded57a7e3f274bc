// `loom model score` over texts longer than the context (sliding window, HF perplexity guide) and 1-token texts.
// References are computed here, independently of score.ts: a float64 log-softmax over the model's own logits,
// and, for the sliding window, one forward pass per scored token over exactly the context that token should see.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { Engine } from '../../src/engine/index.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { scoreIds, scoreText } from '../../src/generate/score.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { LoomTokenizer } from '../../src/tokenizer/tokenizer.ts';

let engine: Engine;
let work: string;
let lm: CausalLM; // context 8
let wide: CausalLM; // context 64, same weights
let tok: LoomTokenizer;
const CONTEXT = 8;

before(async () => {
  engine = await Engine.create({ threads: 2 });
  work = mkdtempSync(join(tmpdir(), 'loom-score-'));
  const over = { initializer_range: 0.2, num_hidden_layers: 2 };
  createModelFolder(join(work, 'short'), {
    preset: 'tiny',
    seed: 5,
    overrides: { ...over, max_position_embeddings: CONTEXT },
  });
  createModelFolder(join(work, 'wide'), {
    preset: 'tiny',
    seed: 5,
    overrides: { ...over, max_position_embeddings: 64 },
  });
  lm = await CausalLM.fromFolder(join(work, 'short'), { engine });
  wide = await CausalLM.fromFolder(join(work, 'wide'), { engine });
  tok = LoomTokenizer.fromFolder(join(work, 'short'));
});

after(async () => {
  await lm.close();
  await wide.close();
  await engine.close();
  rmSync(work, { recursive: true, force: true });
});

/** log p(ids[t] | ids[0..t-1]) for every t >= 1 from one forward pass, log-softmax in float64 written here. */
async function direct(model: CausalLM, ids: number[]): Promise<number[]> {
  const V = model.config.vocabSize;
  const logits = await model.forward([ids]);
  const out: number[] = [];
  for (let t = 1; t < ids.length; t++) out.push(logProb(logits, (t - 1) * V, V, ids[t]!));
  return out;
}

function logProb(logits: Float32Array, at: number, V: number, id: number): number {
  const row = Array.from(logits.subarray(at, at + V), Number);
  const m = Math.max(...row);
  return row[id]! - m - Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
}

const ids = Array.from({ length: 30 }, (_, i) => 5 + ((i * 7) % 50));

test('window >= text length: the same per-token log-probabilities as one full-context pass', async () => {
  const short = ids.slice(0, CONTEXT);
  const want = await direct(lm, short);
  for (const o of [{}, { window: CONTEXT }, { window: CONTEXT, stride: 1 }]) {
    const got = await scoreIds(lm, short, o);
    assert.equal(got.windows, 1);
    assert.equal(got.logprobs[0], null);
    for (const [i, x] of got.logprobs.slice(1).entries()) {
      assert.ok(Math.abs(x! - want[i]!) < 1e-9, `token ${i + 1}: ${x} vs ${want[i]}`);
    }
  }
  // a wider-context copy of the model scoring the whole 30 tokens at once equals a window of 30
  const whole = await direct(wide, ids);
  const got = await scoreIds(wide, ids, { window: 30 });
  for (const [i, x] of got.logprobs.slice(1).entries()) assert.ok(Math.abs(x! - whole[i]!) < 1e-9);
});

test('sliding window over a text longer than the context: each token scored from the context HF’s loop gives it', async () => {
  for (const [window, stride] of [
    [8, 3],
    [8, 7],
    [8, 1],
    [5, 4],
  ] as const) {
    const got = await scoreIds(lm, ids, { window, stride });
    assert.equal(got.logprobs.length, ids.length);
    assert.equal(got.logprobs[0], null);
    // Independent reference: windows start at 0, stride, 2·stride…; token t belongs to the first window whose end
    // (begin + window, capped at the text) lies past it, and is predicted from that window's tokens before it.
    const V = lm.config.vocabSize;
    let sum = 0;
    for (let t = 1; t < ids.length; t++) {
      let begin = 0;
      while (Math.min(begin + window, ids.length) <= t) begin += stride;
      const ctx = ids.slice(begin, t);
      assert.ok(ctx.length >= 1 && ctx.length <= window - 1);
      const logits = await lm.forward([ctx]);
      const want = logProb(logits, (ctx.length - 1) * V, V, ids[t]!);
      assert.ok(Math.abs(got.logprobs[t]! - want) < 1e-4, `window ${window} stride ${stride} token ${t}`);
      sum += want;
    }
    const expectWindows = Math.ceil((ids.length - window) / stride) + 1;
    assert.equal(got.windows, expectWindows, `window ${window} stride ${stride}`);
    const mean = got.logprobs.slice(1).reduce((a, b) => a! + b!, 0)! / (ids.length - 1);
    assert.ok(Math.abs(Math.exp(-mean) - Math.exp(-sum / (ids.length - 1))) < 1e-3 * Math.exp(-mean));
  }
});

test('a text longer than the context is no longer refused; the default stride is half the window', async () => {
  const s = await scoreIds(lm, ids);
  assert.equal(s.window, CONTEXT);
  assert.equal(s.stride, CONTEXT / 2);
  assert.ok(s.logprobs.slice(1).every((x) => typeof x === 'number' && Number.isFinite(x)));
});

test('a 1-token text reports nothing to predict (perplexity null), not an error', async () => {
  const one = await tok.encode('a', { addSpecialTokens: false });
  assert.equal(one.length, 1);
  const s = await scoreText(lm, tok, 'a', { addSpecialTokens: false });
  assert.deepEqual([s.count, s.meanLogprob, s.perplexity, s.tokens.length], [0, null, null, 1]);
  assert.equal(s.tokens[0]!.logprob, null);
});

test('a window longer than the context, or a stride not below the window, is refused', async () => {
  const code = (field: string) => (e: unknown) =>
    e instanceof LoomError && e.code === 'CONFIG_INVALID' && e.field === field;
  await assert.rejects(scoreIds(lm, ids, { window: CONTEXT + 1 }), code('window'));
  await assert.rejects(scoreIds(lm, ids, { window: 4, stride: 5 }), code('stride'));
  await assert.rejects(scoreIds(lm, ids, { window: 4, stride: 4 }), code('stride')); // no overlap: a token unscored
  await assert.rejects(scoreIds(lm, ids, { window: 1 }), code('window'));
});
