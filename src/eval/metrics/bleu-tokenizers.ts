/**
 * sacrebleu's BLEU tokenizers (13a, intl, zh, char, none), reproduced rule for rule so that scores match
 * sacrebleu 2.x exactly. Each returns the tokenized line as one space-joined string, as sacrebleu does.
 */
import { LoomError } from '../../core/errors.ts';
import { codePoints, pyNormalizeSpaces, pyStrip } from './pyfmt.ts';

export type BleuTokenizerName = '13a' | 'intl' | 'zh' | 'char' | 'none';
export const BLEU_TOKENIZERS: readonly BleuTokenizerName[] = ['13a', 'intl', 'zh', 'char', 'none'];

// mteval-v13a punctuation classes: {-~ [-` space-& (-+ :-@ /. The space itself is left out here: padding a
// space with spaces changes no token and no later match (those look only at a space's neighbours), and skipping
// it makes the pass several times cheaper on space-heavy lines such as zh output.
const RE_13A_PUNCT = /[{-~[-`!-&(-+:-@/]/g;
const RE_13A_PERIOD_COMMA_1 = /([^0-9])([.,])/g;
const RE_13A_PERIOD_COMMA_2 = /([.,])([^0-9])/g;
const RE_13A_DASH = /([0-9])(-)/g;

/** sacrebleu's TokenizerRegexp (shared post-processing of 13a and zh), before whitespace normalisation. */
function tokenizeRegexpRaw(line: string): string {
  line = line.replace(RE_13A_PUNCT, ' $& ');
  line = line.replace(RE_13A_PERIOD_COMMA_1, '$1 $2 ');
  line = line.replace(RE_13A_PERIOD_COMMA_2, ' $1 $2');
  return line.replace(RE_13A_DASH, '$1 $2 ');
}

function raw13a(line: string): string {
  line = line.replaceAll('<skipped>', '');
  line = line.replaceAll('-\n', '');
  line = line.replaceAll('\n', ' ');
  if (line.includes('&')) {
    line = line.replaceAll('&quot;', '"');
    line = line.replaceAll('&amp;', '&');
    line = line.replaceAll('&lt;', '<');
    line = line.replaceAll('&gt;', '>');
  }
  return tokenizeRegexpRaw(` ${line} `);
}

function tokenize13a(line: string): string {
  return pyNormalizeSpaces(raw13a(line));
}

const RE_INTL_1 = /(\P{N})(\p{P})/gu;
const RE_INTL_2 = /(\p{P})(\P{N})/gu;
const RE_INTL_3 = /(\p{S})/gu;

function rawIntl(line: string): string {
  line = line.replace(RE_INTL_1, '$1 $2 ');
  line = line.replace(RE_INTL_2, ' $1 $2');
  return line.replace(RE_INTL_3, ' $1 ');
}

function tokenizeIntl(line: string): string {
  return pyNormalizeSpaces(rawIntl(line));
}

/**
 * Code-point ranges sacrebleu treats as Chinese. Two of its ranges are written `u'\u20000'` and `u'\u2f800'`,
 * which Python reads as two-character strings ('\u2000' + '0'); compared lexicographically against one character
 * they cover U+2001..U+2A6D and U+2F81..U+2FA1 instead of the CJK Extension B / Supplement blocks. We keep that.
 */
const ZH_RANGES: readonly [number, number][] = [
  [0x3400, 0x4db5],
  [0x4e00, 0x9fa5],
  [0x9fa6, 0x9fbb],
  [0xf900, 0xfa2d],
  [0xfa30, 0xfa6a],
  [0xfa70, 0xfad9],
  [0x2001, 0x2a6d],
  [0x2f81, 0x2fa1],
  [0xff00, 0xffef],
  [0x2e80, 0x2eff],
  [0x3000, 0x303f],
  [0x31c0, 0x31ef],
  [0x2f00, 0x2fdf],
  [0x2ff0, 0x2fff],
  [0x3100, 0x312f],
  [0x31a0, 0x31bf],
  [0xfe10, 0xfe1f],
  [0xfe30, 0xfe4f],
  [0x2600, 0x26ff],
  [0x2700, 0x27bf],
  [0x3200, 0x32ff],
  [0x3300, 0x33ff],
];

const hex4 = (n: number) => `\\u${n.toString(16).padStart(4, '0')}`;
const ZH_CHAR_G = new RegExp(`[${ZH_RANGES.map(([a, b]) => `${hex4(a)}-${hex4(b)}`).join('')}]`, 'g');

function rawZh(line: string): string {
  // Chinese chars are all in the BMP; a UTF-16 class cannot match half of a surrogate pair here.
  return tokenizeRegexpRaw(pyStrip(line).replace(ZH_CHAR_G, ' $& '));
}

function tokenizeZh(line: string): string {
  return pyNormalizeSpaces(rawZh(line));
}

function tokenizeChar(line: string): string {
  return codePoints(line).join(' ');
}

function tokenizeNone(line: string): string {
  return line;
}

/**
 * The tokenizer as a function returning a space-joined string. With `raw`, whitespace runs are left for the
 * caller's split (same tokens, one pass less).
 */
export function getBleuTokenizer(name: string, raw = false): (line: string) => string {
  if (raw) {
    if (name === '13a') return raw13a;
    if (name === 'intl') return rawIntl;
    if (name === 'zh') return rawZh;
  }
  switch (name) {
    case '13a':
      return tokenize13a;
    case 'intl':
      return tokenizeIntl;
    case 'zh':
      return tokenizeZh;
    case 'char':
      return tokenizeChar;
    case 'none':
      return tokenizeNone;
    default:
      throw new LoomError('METRIC_OPTION', `unknown BLEU tokenizer '${name}'`, {
        field: 'tokenize',
        hint: `use one of ${BLEU_TOKENIZERS.join(', ')}`,
      });
  }
}
