import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { LoomTokenizer } from '../../src/tokenizer/tokenizer.ts';

const dir = new URL('../fixtures/tokenizer/', import.meta.url);
const cache = new Map<string, LoomTokenizer>();

/** tokenizer.json and tokenizer_config.json of a committed real tokenizer. */
export function fixtureTokenizerFiles(name: 'qwen3' | 'llama3'): { json: string; config: Record<string, unknown> } {
  return {
    json: gunzipSync(readFileSync(new URL(`${name}/tokenizer.json.gz`, dir))).toString('utf8'),
    config: JSON.parse(readFileSync(new URL(`${name}/tokenizer_config.json`, dir), 'utf8')),
  };
}

/** The real Qwen3 / Llama 3 tokenizers committed under test/fixtures/tokenizer (see SOURCE.md there). */
export function fixtureTokenizer(name: 'qwen3' | 'llama3'): LoomTokenizer {
  let t = cache.get(name);
  if (!t) {
    const { json, config } = fixtureTokenizerFiles(name);
    t = LoomTokenizer.fromStrings(json, config, `fixtures/${name}`);
    cache.set(name, t);
  }
  return t;
}

/**
 * A hand-built tokenizer.json in the Llama 2 / TinyLlama / Mistral layout (sentencepiece BPE with byte fallback:
 * Prepend + Replace normalizer, `▁` for spaces, `<0xNN>` byte tokens, Replace/ByteFallback/Fuse/Strip decoder).
 */
export function sentencepieceToyTokenizer(): LoomTokenizer {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  let id = 259;
  for (const t of [
    '▁',
    'h',
    'e',
    'l',
    'o',
    'w',
    'r',
    'd',
    '▁h',
    'll',
    '▁he',
    '▁hell',
    '▁hello',
    '▁w',
    'or',
    '▁wor',
    '▁worl',
    '▁world',
    '你',
  ]) {
    vocab[t] = id++;
  }
  const merges = ['▁ h', 'l l', '▁h e', '▁he ll', '▁hell o', '▁ w', 'o r', '▁w or', '▁wor l', '▁worl d'];
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['<unk>', '<s>', '</s>'].map((content, i) => ({
      id: i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  return LoomTokenizer.fromStrings(
    JSON.stringify(json),
    { bos_token: '<s>', eos_token: '</s>', add_bos_token: true },
    'toy-sp',
  );
}
