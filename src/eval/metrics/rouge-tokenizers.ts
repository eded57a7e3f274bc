/**
 * Tokenizers for ROUGE. `default` is rouge-score's (lowercase, non-[a-z0-9] → space, optional Porter stemming of
 * tokens longer than 3). It drops every CJK character, so Chinese needs one of the others: `char` (every non-space
 * character is a token, case and punctuation kept), `whitespace` (pre-segmented text), `jieba` (word segmentation
 * with @node-rs/jieba and its bundled dictionary, loaded on first use).
 */
import { createRequire } from 'node:module';
import { LoomError } from '../../core/errors.ts';
import { porterStem } from './porter.ts';
import { codePoints, pyIsSpace, pySplit } from './pyfmt.ts';

export type RougeTokenizerName = 'default' | 'char' | 'whitespace' | 'jieba';
export const ROUGE_TOKENIZERS: readonly RougeTokenizerName[] = ['default', 'char', 'whitespace', 'jieba'];

export interface RougeTokenizer {
  tokenize(text: string): string[];
}

const VALID = /^[a-z0-9]+$/;

/**
 * rouge_score.tokenize.tokenize(text, stemmer): lowercase, runs of [a-z0-9] are the tokens (rouge-score replaces
 * everything else by spaces and splits), tokens longer than 3 are stemmed, invalid results dropped.
 */
export function rougeDefaultTokenize(text: string, useStemmer = false): string[] {
  const s = text.toLowerCase();
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 32;
    const word = (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
    if (word) {
      if (start < 0) start = i;
      continue;
    }
    if (start < 0) continue;
    let t = s.slice(start, i);
    start = -1;
    if (useStemmer) {
      if (t.length > 3) t = porterStem(t);
      if (!VALID.test(t)) continue;
    }
    out.push(t);
  }
  return out;
}

function charTokenize(text: string): string[] {
  return codePoints(text).filter((c) => !pyIsSpace(c));
}

function whitespaceTokenize(text: string): string[] {
  return pySplit(text);
}

interface JiebaLike {
  cut(sentence: string, hmm?: boolean | null): string[];
}

let jieba: JiebaLike | null = null;

/** Loads @node-rs/jieba with its default dictionary (v2 ships dict.txt; `Jieba.withDict(dict)` reads it). */
function getJieba(): JiebaLike {
  if (jieba) return jieba;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@node-rs/jieba') as { Jieba: { withDict(d: Uint8Array): JiebaLike } };
    const { dict } = require('@node-rs/jieba/dict') as { dict: Uint8Array };
    jieba = mod.Jieba.withDict(dict);
    return jieba;
  } catch (e) {
    throw new LoomError(
      'METRIC_OPTION',
      `cannot load @node-rs/jieba for the jieba tokenizer: ${(e as Error).message}`,
      {
        field: 'tokenizer',
        hint: 'install it with `npm install @node-rs/jieba`, or use the char tokenizer',
        cause: e,
      },
    );
  }
}

export function jiebaTokenize(text: string): string[] {
  return getJieba()
    .cut(text, true)
    .filter((t) => t.length > 0 && !codePoints(t).every(pyIsSpace));
}

export function getRougeTokenizer(name: RougeTokenizerName | string, useStemmer = false): RougeTokenizer {
  switch (name) {
    case 'default':
      return { tokenize: (t) => rougeDefaultTokenize(t, useStemmer) };
    case 'char':
      return { tokenize: charTokenize };
    case 'whitespace':
      return { tokenize: whitespaceTokenize };
    case 'jieba':
      return { tokenize: jiebaTokenize };
    default:
      throw new LoomError('METRIC_OPTION', `unknown ROUGE tokenizer '${name}'`, {
        field: 'tokenizer',
        hint: `use one of ${ROUGE_TOKENIZERS.join(', ')}`,
      });
  }
}
