/**
 * The quality rules as pure functions `(text, cfg) → Verdict | undefined` (undefined = keep). Each verdict
 * names the rule, the measured value and the threshold. Definitions follow datatrove's implementations
 * (checked against `gopher_repetition_filter.py`, `gopher_quality_filter.py`, `c4_filters.py` and
 * `fineweb_quality_filter.py`); where Loom differs it is said next to the rule. Word rules take Latin text
 * tokenised by `wordTokens`; the Chinese variants use characters (`charTokens`) because there is no segmenter.
 */
import {
  charTokens,
  countHan,
  countNonSpace,
  countOf,
  duplicates,
  dupNGramChars,
  hasAlpha,
  isWordish,
  type Tokens,
  topNGramChars,
  type WordTokens,
  wordTokens,
} from './text.ts';

export interface Verdict {
  rule: string;
  value: number;
  threshold: number;
}

/** A threshold that is `null` disables its rule. */
export type Thr = number | null;

export interface RepetitionConfig {
  dupLineFrac: Thr;
  dupParaFrac: Thr;
  dupLineCharFrac: Thr;
  dupParaCharFrac: Thr;
  /** [n, max fraction of characters in the most common n-gram]. */
  topNGrams: [number, number][];
  /** [n, max fraction of characters in duplicated n-grams]. */
  dupNGrams: [number, number][];
  /** Texts shorter than this (characters) skip the n-gram rules (short chat turns repeat naturally). */
  minChars: number;
  /**
   * The most common n-gram must occur at least this often for `top_n_gram` to fire. datatrove counts a single
   * occurrence too, which on a one-sentence text makes one 4-gram "16 % of the text" with nothing repeated; 2
   * (the default) means "repeated at all", the chat preset asks for more (see presets.ts).
   */
  topNGramMinCount: number;
}

const PARA_RE = /\n{2,}/;
const LINES_RE = /\n+/;

/**
 * Gopher repetition (Rae et al. 2021, Table A1) as datatrove computes it: paragraphs split on 2+ newlines of the
 * trimmed text, lines on 1+ newlines; fractions of duplicate elements, and of their characters over the
 * whole text length; top n-gram = characters of the most frequent n-gram × its count / text length (word
 * n-grams measured with single spaces between words); duplicate n-grams counted greedily. `unit: 'char'`
 * makes every non-whitespace character a token (the Chinese variant).
 */
export function repetition(
  text: string,
  cfg: RepetitionConfig,
  unit: 'word' | 'char',
  tokens?: Tokens,
): Verdict | undefined {
  const len = text.length;
  if (len === 0) return undefined;
  if (cfg.dupParaFrac !== null || cfg.dupParaCharFrac !== null) {
    const paras = text.trim().split(PARA_RE);
    const d = duplicates(paras);
    if (cfg.dupParaFrac !== null && d.count / paras.length > cfg.dupParaFrac)
      return { rule: 'dup_para_frac', value: d.count / paras.length, threshold: cfg.dupParaFrac };
    if (cfg.dupParaCharFrac !== null && d.chars / len > cfg.dupParaCharFrac)
      return { rule: 'dup_para_char_frac', value: d.chars / len, threshold: cfg.dupParaCharFrac };
  }
  if (cfg.dupLineFrac !== null || cfg.dupLineCharFrac !== null) {
    const lines = text.split(LINES_RE);
    const d = duplicates(lines);
    if (cfg.dupLineFrac !== null && d.count / lines.length > cfg.dupLineFrac)
      return { rule: 'dup_line_frac', value: d.count / lines.length, threshold: cfg.dupLineFrac };
    if (cfg.dupLineCharFrac !== null && d.chars / len > cfg.dupLineCharFrac)
      return { rule: 'dup_line_char_frac', value: d.chars / len, threshold: cfg.dupLineCharFrac };
  }
  if (len < cfg.minChars || (cfg.topNGrams.length === 0 && cfg.dupNGrams.length === 0)) return undefined;
  const tok = tokens ?? (unit === 'word' ? wordTokens(text) : charTokens(text));
  const sep = unit === 'word' ? 1 : 0;
  for (const [n, frac] of cfg.topNGrams) {
    const v = topNGramChars(tok, n, sep, cfg.topNGramMinCount) / len;
    if (v > frac) return { rule: `top_${n}_gram`, value: v, threshold: frac };
  }
  for (const [n, frac] of cfg.dupNGrams) {
    const v = dupNGramChars(tok, n) / len;
    if (v > frac) return { rule: `dup_${n}_gram`, value: v, threshold: frac };
  }
  return undefined;
}

export interface GopherQualityConfig {
  minWords: Thr;
  maxWords: Thr;
  minAvgWordLen: Thr;
  maxAvgWordLen: Thr;
  maxSymbolWordRatio: Thr;
  maxBulletLinesRatio: Thr;
  maxEllipsisLinesRatio: Thr;
  minAlphaWordsRatio: Thr;
  minStopWords: Thr;
  stopWords: string[];
}

const BULLET_START = /^\s*[•\-●○■□▪▫※·➢*]/;
const ELLIPSIS_END = /(\.\.\.|…|。。。)\s*$/;

function lineRatios(text: string): { lines: number; bullets: number; ellipsis: number } {
  const lines = text.split(/\r\n|\r|\n/);
  let bullets = 0;
  let ellipsis = 0;
  for (const l of lines) {
    if (BULLET_START.test(l)) bullets++;
    if (ELLIPSIS_END.test(l)) ellipsis++;
  }
  return { lines: lines.length, bullets, ellipsis };
}

/** Gopher's bullet-line and ellipsis-line ratios (shared by the English and Chinese quality rules). */
function bulletEllipsisLines(
  text: string,
  cfg: { maxBulletLinesRatio: Thr; maxEllipsisLinesRatio: Thr },
): Verdict | undefined {
  if (cfg.maxBulletLinesRatio === null && cfg.maxEllipsisLinesRatio === null) return undefined;
  const r = lineRatios(text);
  if (cfg.maxBulletLinesRatio !== null && r.bullets / r.lines > cfg.maxBulletLinesRatio)
    return { rule: 'too_many_bullets', value: r.bullets / r.lines, threshold: cfg.maxBulletLinesRatio };
  if (cfg.maxEllipsisLinesRatio !== null && r.ellipsis / r.lines > cfg.maxEllipsisLinesRatio)
    return { rule: 'too_many_end_ellipsis', value: r.ellipsis / r.lines, threshold: cfg.maxEllipsisLinesRatio };
  return undefined;
}

/**
 * Gopher quality (datatrove `GopherQualityFilter`): word count and mean word length over non-symbol words;
 * `#` and ellipsis counts per word (all tokens); lines starting with a bullet (Loom also counts ● ○ ■ □ ▪ ▫ ※ ·
 * ➢ and *, datatrove only • and -); lines ending with an ellipsis; share of tokens with a letter; stop-word
 * occurrences (Loom compares lower-cased, datatrove case-sensitively).
 */
export function gopherQuality(text: string, cfg: GopherQualityConfig, tokens?: WordTokens): Verdict | undefined {
  const tok = tokens ?? wordTokens(text);
  const words = tok.list;
  const n = words.length;
  let nonSymbol = 0;
  let lenSum = 0;
  let alpha = 0;
  let stop = 0;
  const stopSet = new Set(cfg.stopWords);
  for (const w of words) {
    if (isWordish(w)) {
      nonSymbol++;
      lenSum += w.length;
    }
    if (hasAlpha(w)) alpha++;
    if (stopSet.has(w.toLowerCase())) stop++;
  }
  if (cfg.minWords !== null && nonSymbol < cfg.minWords)
    return { rule: 'short_doc', value: nonSymbol, threshold: cfg.minWords };
  if (cfg.maxWords !== null && nonSymbol > cfg.maxWords)
    return { rule: 'long_doc', value: nonSymbol, threshold: cfg.maxWords };
  const avg = nonSymbol ? lenSum / nonSymbol : 0;
  if (cfg.minAvgWordLen !== null && avg < cfg.minAvgWordLen)
    return { rule: 'below_avg_word_len', value: avg, threshold: cfg.minAvgWordLen };
  if (cfg.maxAvgWordLen !== null && avg > cfg.maxAvgWordLen)
    return { rule: 'above_avg_word_len', value: avg, threshold: cfg.maxAvgWordLen };
  if (cfg.maxSymbolWordRatio !== null && n > 0) {
    const hashes = countOf(text, '#') / n;
    if (hashes > cfg.maxSymbolWordRatio)
      return { rule: 'too_many_hashes', value: hashes, threshold: cfg.maxSymbolWordRatio };
    const ell = (countOf(text, '...') + countOf(text, '…')) / n;
    if (ell > cfg.maxSymbolWordRatio)
      return { rule: 'too_many_ellipsis', value: ell, threshold: cfg.maxSymbolWordRatio };
  }
  const lineVerdict = bulletEllipsisLines(text, cfg);
  if (lineVerdict) return lineVerdict;
  if (cfg.minAlphaWordsRatio !== null && n > 0 && alpha / n < cfg.minAlphaWordsRatio)
    return { rule: 'below_alpha_ratio', value: alpha / n, threshold: cfg.minAlphaWordsRatio };
  if (cfg.minStopWords !== null && stop < cfg.minStopWords)
    return { rule: 'few_stop_words', value: stop, threshold: cfg.minStopWords };
  return undefined;
}

export interface ZhQualityConfig {
  /** Non-whitespace characters. */
  minChars: Thr;
  maxChars: Thr;
  /** Han characters / non-whitespace characters. */
  minHanRatio: Thr;
  /** `#` runs per character and ellipsis runs (… … / ... / 。。。) per character (MAP-NEO). */
  maxSymbolCharRatio: Thr;
  maxBulletLinesRatio: Thr;
  maxEllipsisLinesRatio: Thr;
  /** Occurrences of the stop characters (FineWeb-2 cmn_Hani list). */
  minStopWords: Thr;
  stopWords: string[];
}

/** Character-based quality rules for Chinese (ChineseWebText / MAP-NEO / FineWeb-2 cmn_Hani values). */
export function zhQuality(text: string, cfg: ZhQualityConfig): Verdict | undefined {
  const chars = countNonSpace(text);
  if (cfg.minChars !== null && chars < cfg.minChars)
    return { rule: 'short_doc', value: chars, threshold: cfg.minChars };
  if (cfg.maxChars !== null && chars > cfg.maxChars) return { rule: 'long_doc', value: chars, threshold: cfg.maxChars };
  if (cfg.minHanRatio !== null) {
    const r = chars ? countHan(text) / chars : 0;
    if (r < cfg.minHanRatio) return { rule: 'han_ratio', value: r, threshold: cfg.minHanRatio };
  }
  if (cfg.maxSymbolCharRatio !== null && chars > 0) {
    const hashes = (text.match(/#+/g)?.length ?? 0) / chars;
    if (hashes > cfg.maxSymbolCharRatio)
      return { rule: 'too_many_hashes', value: hashes, threshold: cfg.maxSymbolCharRatio };
    const ell = (text.match(/(?:\.\.\.|…|。。。)+/g)?.length ?? 0) / chars;
    if (ell > cfg.maxSymbolCharRatio)
      return { rule: 'too_many_ellipsis', value: ell, threshold: cfg.maxSymbolCharRatio };
  }
  const lineVerdict = bulletEllipsisLines(text, cfg);
  if (lineVerdict) return lineVerdict;
  if (cfg.minStopWords !== null) {
    const set = new Set(cfg.stopWords);
    let stop = 0;
    for (const ch of text) if (set.has(ch)) stop++;
    if (stop < cfg.minStopWords) return { rule: 'few_stop_words', value: stop, threshold: cfg.minStopWords };
  }
  return undefined;
}

export interface C4Config {
  /** Drop lines that do not end in terminal punctuation (C4 paper; FineWeb turns this off). */
  terminalPunct: boolean;
  /** Lines with fewer words are dropped (words = whitespace tokens; for Chinese lines, Han characters count too). */
  minWordsPerLine: number;
  /** Documents with fewer sentences in their kept lines are dropped. */
  minSentences: number;
  maxWordLength: number;
  loremIpsum: boolean;
  javascript: boolean;
  curlyBracket: boolean;
  policy: boolean;
  removeCitations: boolean;
}

export interface C4Result {
  verdict?: Verdict;
  /** The text with dropped lines removed (same string when nothing was dropped). */
  text: string;
  linesRemoved: number;
}

const CITATION_RE = /\[\d*]|\[edit]|\[citation needed]/g;
const EN_END = ['.', '?', '!', '"', "'"];
const ZH_END = ['。', '！', '？', '…', '”', '」', '』', '.', '?', '!', '"', "'"];
const POLICY = ['terms of use', 'privacy policy', 'cookie policy', 'uses cookies', 'use of cookies', 'use cookies'];
const EN_SENT_RE = /[.!?]+(?=\s|$|["'])/g;
const ZH_SENT_RE = /[。！？!?]+|[.](?=\s|$)/g;
const HAN_CHAR = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/g;

/**
 * C4 line rules (datatrove `C4QualityFilter`): per line, drop it if a word is over `maxWordLength`, if it lacks
 * terminal punctuation (when enabled; Chinese lines also accept 。！？… and closing quotes), has fewer than
 * `minWordsPerLine` words, mentions javascript or a policy phrase; drop the whole document on "lorem ipsum" or
 * a `{`, or when the kept lines hold fewer than `minSentences` sentences. Sentences are counted with a
 * punctuation regex (datatrove uses the punkt tokenizer; a kept line counts as at least one sentence).
 */
export function c4(text: string, cfg: C4Config, zh: boolean): C4Result {
  const ends = zh ? ZH_END : EN_END;
  const kept: string[] = [];
  let sentences = 0;
  let removed = 0;
  const lines = text.split('\n');
  for (const raw of lines) {
    let line = raw.trim();
    const words = line.split(/\s+/).filter((w) => w !== '');
    if (words.some((w) => w.length > cfg.maxWordLength)) {
      removed++;
      continue;
    }
    if (cfg.removeCitations) line = line.replace(CITATION_RE, '');
    if (cfg.terminalPunct && (!ends.some((e) => line.endsWith(e)) || line.endsWith('...'))) {
      removed++;
      continue;
    }
    let nWords = words.length;
    if (zh) nWords += (line.match(HAN_CHAR)?.length ?? 0) - words.filter((w) => /[\u4e00-\u9fff]/.test(w)).length;
    if (nWords < cfg.minWordsPerLine) {
      removed++;
      continue;
    }
    const lower = line.toLowerCase();
    if (cfg.loremIpsum && lower.includes('lorem ipsum'))
      return { verdict: { rule: 'lorem_ipsum', value: 1, threshold: 0 }, text, linesRemoved: 0 };
    if (cfg.javascript && lower.includes('javascript')) {
      removed++;
      continue;
    }
    if (cfg.curlyBracket && line.includes('{'))
      return { verdict: { rule: 'curly_bracket', value: 1, threshold: 0 }, text, linesRemoved: 0 };
    if (cfg.policy && POLICY.some((p) => lower.includes(p))) {
      removed++;
      continue;
    }
    sentences += Math.max(1, line.match(zh ? ZH_SENT_RE : EN_SENT_RE)?.length ?? 0);
    kept.push(line);
  }
  if (sentences < cfg.minSentences)
    return {
      verdict: { rule: 'too_few_sentences', value: sentences, threshold: cfg.minSentences },
      text,
      linesRemoved: 0,
    };
  return { text: removed ? kept.join('\n') : text, linesRemoved: removed };
}

export interface FineWebConfig {
  /** Drop if the share of lines ending in terminal punctuation is <= this. */
  linePunctThr: Thr;
  /** Drop if the share of lines of at most `shortLineLength` characters is >= this. */
  shortLineThr: Thr;
  shortLineLength: number;
  /** Drop if characters in duplicated non-empty lines / characters (newlines excluded) is >= this. */
  charDupRatio: Thr;
  /** Drop if newlines / words is > this (words: word tokens, or non-space characters for Chinese). */
  newLineRatio: Thr;
}

const FW_END_EN = ['.', "'", '"', '!', '?'];
const FW_END_ZH = ['.', "'", '"', '!', '?', '。', '！', '？', '…', '”', '」'];

/** FineWeb quality rules (datatrove `FineWebQualityFilter`), including its `<=` / `>=` comparisons. */
export function fineweb(text: string, cfg: FineWebConfig, zh: boolean, tokens?: WordTokens): Verdict | undefined {
  const lines = text.split('\n');
  if (cfg.linePunctThr !== null) {
    const ends = zh ? FW_END_ZH : FW_END_EN;
    const r = lines.filter((l) => ends.some((e) => l.endsWith(e))).length / lines.length;
    if (r <= cfg.linePunctThr) return { rule: 'line_punct_ratio', value: r, threshold: cfg.linePunctThr };
  }
  if (cfg.shortLineThr !== null) {
    const r = lines.filter((l) => l.length <= cfg.shortLineLength).length / lines.length;
    if (r >= cfg.shortLineThr) return { rule: 'short_line_ratio', value: r, threshold: cfg.shortLineThr };
  }
  if (cfg.charDupRatio !== null) {
    const d = duplicates(lines.filter((l) => l.trim() !== ''));
    const denom = text.length - (lines.length - 1);
    const r = denom > 0 ? d.chars / denom : 0;
    if (r >= cfg.charDupRatio) return { rule: 'char_dup_ratio', value: r, threshold: cfg.charDupRatio };
  }
  if (cfg.newLineRatio !== null) {
    const words = zh ? countNonSpace(text) : (tokens ?? wordTokens(text)).ids.length;
    const r = words ? (lines.length - 1) / words : Number.POSITIVE_INFINITY;
    if (r > cfg.newLineRatio) return { rule: 'list_ratio', value: r, threshold: cfg.newLineRatio };
  }
  return undefined;
}

export interface LengthConfig {
  minChars: Thr;
  maxChars: Thr;
  /** Words = Latin/number word tokens plus Han characters. */
  minWords: Thr;
  maxWords: Thr;
}

export function lengthRule(text: string, cfg: LengthConfig): Verdict | undefined {
  const chars = text.trim().length;
  if (cfg.minChars !== null && chars < cfg.minChars)
    return { rule: 'too_short_chars', value: chars, threshold: cfg.minChars };
  if (cfg.maxChars !== null && chars > cfg.maxChars)
    return { rule: 'too_long_chars', value: chars, threshold: cfg.maxChars };
  if (cfg.minWords !== null || cfg.maxWords !== null) {
    const han = countHan(text);
    const latin = text.replace(HAN_CHAR, ' ').match(/[\p{L}\p{N}]+/gu)?.length ?? 0;
    const words = han + latin;
    if (cfg.minWords !== null && words < cfg.minWords)
      return { rule: 'too_few_words', value: words, threshold: cfg.minWords };
    if (cfg.maxWords !== null && words > cfg.maxWords)
      return { rule: 'too_many_words', value: words, threshold: cfg.maxWords };
  }
  return undefined;
}
