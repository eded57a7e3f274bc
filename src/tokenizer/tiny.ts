/**
 * The tiny tokenizer shipped with Loom for random-init models (`loom model new --preset tiny`): byte-level BPE,
 * 512 ids = 3 specials (<|endoftext|>=0 pad, <|im_start|>=1, <|im_end|>=2 eos) + 256 bytes + 253 merges learnt
 * from assets/tiny/corpus.txt, with the chatml template. Any text encodes (bytes are always in the vocabulary).
 *
 * API:
 *   tinyTokenizerFiles() -> { 'tokenizer.json': string, 'tokenizer_config.json': string }
 *   buildTinyTokenizerJson() -> string   (retrains from the corpus; deterministic; used to regenerate the asset:
 *                                          npx tsx -e "import('./src/tokenizer/tiny.ts').then(m=>m.writeTinyAssets())")
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BUILTIN_TEMPLATES } from './chat.ts';
import { trainByteLevelBpe } from './train-bpe.ts';

const ASSETS = fileURLToPath(new URL('./assets/tiny/', import.meta.url));
export const TINY_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
export const TINY_VOCAB_SIZE = 512;

export function buildTinyTokenizerJson(): string {
  const corpus = readFileSync(`${ASSETS}corpus.txt`, 'utf8');
  const json = trainByteLevelBpe(corpus.split('\n'), {
    vocabSize: TINY_VOCAB_SIZE,
    specialTokens: TINY_SPECIALS,
    minFrequency: 2,
  });
  return JSON.stringify(json);
}

export function tinyTokenizerConfig(): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    add_bos_token: false,
    model_max_length: 1024,
    clean_up_tokenization_spaces: false,
    chat_template: BUILTIN_TEMPLATES.chatml,
  };
}

export function tinyTokenizerFiles(): Record<string, string> {
  return {
    'tokenizer.json': readFileSync(`${ASSETS}tokenizer.json`, 'utf8'),
    'tokenizer_config.json': `${JSON.stringify(tinyTokenizerConfig(), null, 2)}\n`,
  };
}

export function writeTinyAssets(): void {
  writeFileSync(`${ASSETS}tokenizer.json`, buildTinyTokenizerJson());
}
