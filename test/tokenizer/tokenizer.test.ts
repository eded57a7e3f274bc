import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixtureTokenizer } from './fixtures.ts';

const SAMPLES = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.\n\n  Indented line\ttab',
  '你好，世界！今天天气很好。',
  'Emoji: 😀👍🏽🇯🇵 and a family 👨‍👩‍👧',
  'Mixed: café naïve Ünïcödé — “quotes” 123456789 3.14159',
  'code: def f(x):\n    return x ** 2  # square',
];

test('Qwen3: special token ids as published (<|endoftext|> 151643, <|im_start|> 151644, <|im_end|> 151645)', () => {
  const t = fixtureTokenizer('qwen3');
  assert.equal(t.tokenToId('<|endoftext|>'), 151643);
  assert.equal(t.tokenToId('<|im_start|>'), 151644);
  assert.equal(t.tokenToId('<|im_end|>'), 151645);
  assert.equal(t.tokenToId('<think>'), 151667);
  assert.equal(t.idToToken(151645), '<|im_end|>');
  assert.deepEqual(t.eos, { token: '<|im_end|>', id: 151645 });
  assert.deepEqual(t.pad, { token: '<|endoftext|>', id: 151643 });
  assert.equal(t.bos, null);
  assert.ok(t.eosIds.includes(151645));
  assert.ok(t.isSpecial(151644) && !t.isSpecial(9707));
});

test('Llama 3: special token ids as published (<|begin_of_text|> 128000, <|eot_id|> 128009)', () => {
  const t = fixtureTokenizer('llama3');
  assert.equal(t.tokenToId('<|begin_of_text|>'), 128000);
  assert.equal(t.tokenToId('<|end_of_text|>'), 128001);
  assert.equal(t.tokenToId('<|start_header_id|>'), 128006);
  assert.equal(t.tokenToId('<|end_header_id|>'), 128007);
  assert.equal(t.tokenToId('<|eot_id|>'), 128009);
  assert.deepEqual(t.bos, { token: '<|begin_of_text|>', id: 128000 });
  assert.deepEqual(t.eos, { token: '<|end_of_text|>', id: 128001 });
  // <|eot_id|> ends an assistant turn even though the config's eos is <|end_of_text|>.
  assert.deepEqual([...t.eosIds].sort(), [128001, 128009]);
});

test('known ids: Llama 3 shares cl100k ids for its first 100k tokens ("Hello world" = 9906, 1917)', async () => {
  const l = fixtureTokenizer('llama3');
  assert.deepEqual(await l.encode('Hello world'), [9906, 1917]);
  assert.deepEqual(await l.encode('hello world'), [15339, 1917]);
  const q = fixtureTokenizer('qwen3');
  assert.deepEqual(await q.encode('Hello world'), [9707, 1879]);
  // Special tokens in text are matched as single tokens.
  assert.deepEqual(await q.encode('<|im_start|>user'), [151644, 872]);
});

test('encode/decode round trips (English, Chinese, emoji, whitespace, code) on both tokenizers', async () => {
  for (const name of ['qwen3', 'llama3'] as const) {
    const t = fixtureTokenizer(name);
    for (const s of SAMPLES) {
      const ids = await t.encode(s);
      assert.equal(await t.decode(ids), s, `${name}: ${s}`);
    }
  }
});

test('tokenBytes: token bytes concatenate to the UTF-8 of the decoded text', async () => {
  for (const name of ['qwen3', 'llama3'] as const) {
    const t = fixtureTokenizer(name);
    assert.ok(t.hasByteTokens);
    for (const s of [...SAMPLES, '<|im_end|> tail']) {
      const ids = await t.encode(s);
      const bytes = Buffer.concat(ids.map((id) => Buffer.from(t.tokenBytes(id))));
      assert.equal(bytes.toString('utf8'), await t.decode(ids), `${name}: ${s}`);
    }
  }
  // A single emoji splits into byte tokens that are not valid UTF-8 alone.
  const q = fixtureTokenizer('qwen3');
  const ids = await q.encode('🇯🇵');
  assert.ok(ids.length > 1);
  assert.deepEqual(Buffer.concat(ids.map((id) => Buffer.from(q.tokenBytes(id)))), Buffer.from('🇯🇵'));
});

test('decode can skip special tokens', async () => {
  const t = fixtureTokenizer('llama3');
  assert.equal(await t.decode([128000, 9906, 1917, 128009]), '<|begin_of_text|>Hello world<|eot_id|>');
  assert.equal(await t.decode([128000, 9906, 1917, 128009], { skipSpecialTokens: true }), 'Hello world');
});

test('encodeBatch equals encode per text', async () => {
  const t = fixtureTokenizer('qwen3');
  const batch = await t.encodeBatch(SAMPLES);
  for (let i = 0; i < SAMPLES.length; i++) assert.deepEqual(batch[i], await t.encode(SAMPLES[i] as string));
});
