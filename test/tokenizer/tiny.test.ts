import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildTinyTokenizerJson,
  TINY_VOCAB_SIZE,
  tinyTokenizerConfig,
  tinyTokenizerFiles,
} from '../../src/tokenizer/tiny.ts';
import { LoomTokenizer } from '../../src/tokenizer/tokenizer.ts';
import { trainByteLevelBpe } from '../../src/tokenizer/train-bpe.ts';

test('the committed tiny tokenizer is what the trainer produces from the shipped corpus', () => {
  assert.equal(buildTinyTokenizerJson(), tinyTokenizerFiles()['tokenizer.json']);
});

test('tiny tokenizer: 512 contiguous ids, specials first, any text round-trips', async () => {
  const t = LoomTokenizer.fromStrings(tinyTokenizerFiles()['tokenizer.json'] as string, tinyTokenizerConfig());
  assert.equal(t.vocabSize, TINY_VOCAB_SIZE);
  assert.equal(t.tokenToId('<|endoftext|>'), 0);
  assert.equal(t.tokenToId('<|im_start|>'), 1);
  assert.equal(t.tokenToId('<|im_end|>'), 2);
  for (let id = 0; id < TINY_VOCAB_SIZE; id++) assert.notEqual(t.idToToken(id), null, `id ${id}`);
  for (const s of ['Where is my parcel?', 'ÄÖÜ ß € 你好 🚀', '\t\n  x', '<|im_start|>user\nhi<|im_end|>']) {
    assert.equal(await t.decode(await t.encode(s)), s);
  }
});

test('BPE trainer: merges the most frequent pair first, ties to the smallest pair', async () => {
  // "ab" occurs 3 times, "cd" 3 times, "bc" twice: ties between "a b" and "c d" go to "a b".
  const json = trainByteLevelBpe(['ab ab ab cd cd cd bc bc'], { vocabSize: 256 + 2, minFrequency: 1 }) as {
    model: { merges: string[]; vocab: Record<string, number> };
  };
  assert.deepEqual(json.model.merges, ['a b', 'c d']);
  assert.equal(json.model.vocab.ab, 256);
  const t = LoomTokenizer.fromStrings(JSON.stringify(json));
  assert.deepEqual(await t.encode('abcd'), [256, 257]);
});
