/**
 * A small byte-level BPE trainer that writes an HF `tokenizer.json` (GPT-2 style: ByteLevel pre-tokenizer with
 * its regex, ByteLevel decoder, 256 byte tokens, merges). The `tokenizers` npm binding exposes no trainer
 * options (vocab size, special tokens), so Loom trains its own tiny tokenizers for random-init models.
 *
 * API: trainByteLevelBpe(texts, { vocabSize, specialTokens }) -> tokenizer.json object (load with LoomTokenizer.fromStrings).
 * Ids: special tokens first (0..s-1), then the 256 bytes, then merges in the order learnt. Deterministic: ties
 * between equally frequent pairs go to the lexicographically smallest pair.
 */
import { LoomError } from '../core/errors.ts';
import { byteLevelChars } from './tokenizer.ts';

// GPT-2's pre-tokenization pattern (the one ByteLevel uses with use_regex: true).
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface BpeTrainOptions {
  vocabSize: number;
  specialTokens?: string[];
  minFrequency?: number;
}

export function trainByteLevelBpe(texts: Iterable<string>, opts: BpeTrainOptions): Record<string, unknown> {
  const specials = opts.specialTokens ?? [];
  const minFreq = opts.minFrequency ?? 2;
  if (opts.vocabSize < specials.length + 256) {
    throw new LoomError(
      'CONFIG_INVALID',
      `vocab size ${opts.vocabSize} is below ${specials.length + 256} (specials + 256 bytes)`,
      {
        field: 'vocab_size',
      },
    );
  }
  const byteToChar: string[] = [];
  for (const [ch, b] of byteLevelChars()) byteToChar[b] = ch;
  const enc = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(GPT2_SPLIT)) {
      const w = Array.from(enc.encode(m[0]), (b) => byteToChar[b] as string).join('');
      wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
    }
  }
  const words: { syms: string[]; count: number }[] = [...wordCounts.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([w, count]) => ({ syms: Array.from(w), count }));

  const vocab: Record<string, number> = {};
  // Specials sit in the model vocabulary too (as HF's trainers put them): the library then keeps their ids.
  specials.forEach((t, i) => {
    vocab[t] = i;
  });
  let next = specials.length;
  for (let b = 0; b < 256; b++) vocab[byteToChar[b] as string] = next++;
  const merges: string[] = [];
  while (next < opts.vocabSize) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.syms.length; i++) {
        const key = `${w.syms[i]} ${w.syms[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + w.count);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [k, c] of pairs) {
      if (c > bestCount || (c === bestCount && best !== undefined && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (!best || bestCount < minFreq) break;
    const [a, b] = best.split(' ') as [string, string];
    const merged = a + b;
    merges.push(best);
    if (!(merged in vocab)) vocab[merged] = next++;
    for (const w of words) {
      const s = w.syms;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === a && s[i + 1] === b) s.splice(i, 2, merged);
      }
    }
  }
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
