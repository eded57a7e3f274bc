/**
 * Default thresholds and the presets `web`, `chat`, `minimal` (and `none`). Sources: Gopher Table A1 and
 * datatrove defaults for English; ChineseWebText (≥ 200 chars, Han ≥ 30 %), MAP-NEO (character n-gram
 * 0.20/0.18/0.16, duplicate 5–10-char-grams 0.60, `#`/ellipsis runs per char 0.1) and FineWeb-2 cmn_Hani
 * (duplicate line 0.287, line punctuation 0.106, char dup 0.1, stop characters) for Chinese. See docs/data.md.
 */
import type { Lang } from '../langid.ts';
import type {
  C4Config,
  FineWebConfig,
  GopherQualityConfig,
  LengthConfig,
  RepetitionConfig,
  ZhQualityConfig,
} from './rules.ts';

export interface LangConfig {
  allowed: Lang[];
  minScore: number;
}

export interface RuleSet<Q> {
  repetition: RepetitionConfig | false;
  quality: Q | false;
  c4: C4Config | false;
  fineweb: FineWebConfig | false;
}

export interface QualityFilterConfig {
  length: LengthConfig | false;
  lang: LangConfig | false;
  /** Rules for rows detected as English (and `other`, when the language rule lets those through). */
  en: RuleSet<GopherQualityConfig>;
  /** Character-based rules for rows detected as Chinese. */
  zh: RuleSet<ZhQualityConfig>;
  /** C4 may remove lines from `text` rows (logged as `changed`); false only drops whole rows. */
  c4RemoveLines: boolean;
}

export type PresetName = 'web' | 'chat' | 'minimal' | 'none';

export const DEFAULTS = {
  length: { minChars: 1, maxChars: 100_000, minWords: null, maxWords: null } satisfies LengthConfig,
  lang: { allowed: ['zh', 'en'], minScore: 0.5 } satisfies LangConfig as LangConfig,
  enRepetition: {
    dupLineFrac: 0.3,
    dupParaFrac: 0.3,
    dupLineCharFrac: 0.2,
    dupParaCharFrac: 0.2,
    topNGrams: [
      [2, 0.2],
      [3, 0.18],
      [4, 0.16],
    ],
    dupNGrams: [
      [5, 0.15],
      [6, 0.14],
      [7, 0.13],
      [8, 0.12],
      [9, 0.11],
      [10, 0.1],
    ],
    minChars: 0,
    topNGramMinCount: 2,
  } satisfies RepetitionConfig as RepetitionConfig,
  zhRepetition: {
    dupLineFrac: 0.287,
    dupParaFrac: 0.3,
    dupLineCharFrac: 0.2,
    dupParaCharFrac: 0.2,
    topNGrams: [
      [2, 0.2],
      [3, 0.18],
      [4, 0.16],
    ],
    dupNGrams: [
      [5, 0.6],
      [6, 0.6],
      [7, 0.6],
      [8, 0.6],
      [9, 0.6],
      [10, 0.6],
    ],
    minChars: 0,
    topNGramMinCount: 2,
  } satisfies RepetitionConfig as RepetitionConfig,
  gopherQuality: {
    minWords: 50,
    maxWords: 100_000,
    minAvgWordLen: 3,
    maxAvgWordLen: 10,
    maxSymbolWordRatio: 0.1,
    maxBulletLinesRatio: 0.9,
    maxEllipsisLinesRatio: 0.3,
    minAlphaWordsRatio: 0.8,
    minStopWords: 2,
    stopWords: ['the', 'be', 'to', 'of', 'and', 'that', 'have', 'with'],
  } satisfies GopherQualityConfig as GopherQualityConfig,
  zhQuality: {
    minChars: 200,
    maxChars: 100_000,
    minHanRatio: 0.3,
    maxSymbolCharRatio: 0.1,
    maxBulletLinesRatio: 0.9,
    maxEllipsisLinesRatio: 0.3,
    minStopWords: 2,
    stopWords: '的 年 在 月 是 和 日 了 於 為 有 被 人 中 为 他 與 後 也 而 由'.split(' '),
  } satisfies ZhQualityConfig as ZhQualityConfig,
  c4: {
    terminalPunct: false,
    minWordsPerLine: 3,
    minSentences: 5,
    maxWordLength: 1000,
    loremIpsum: true,
    javascript: true,
    curlyBracket: true,
    policy: true,
    removeCitations: true,
  } satisfies C4Config as C4Config,
  enFineweb: {
    linePunctThr: 0.12,
    shortLineThr: 0.67,
    shortLineLength: 30,
    charDupRatio: 0.01,
    newLineRatio: 0.3,
  } satisfies FineWebConfig as FineWebConfig,
  zhFineweb: {
    linePunctThr: 0.106,
    shortLineThr: null,
    shortLineLength: 30,
    charDupRatio: 0.1,
    newLineRatio: 0.1,
  } satisfies FineWebConfig as FineWebConfig,
};

const clone = <T>(x: T): T => structuredClone(x);

export function preset(name: PresetName): QualityFilterConfig {
  const off = { repetition: false, quality: false, c4: false, fineweb: false } as const;
  switch (name) {
    case 'web':
      return {
        length: clone(DEFAULTS.length),
        lang: clone(DEFAULTS.lang),
        en: {
          repetition: clone(DEFAULTS.enRepetition),
          quality: clone(DEFAULTS.gopherQuality),
          c4: clone(DEFAULTS.c4),
          fineweb: clone(DEFAULTS.enFineweb),
        },
        zh: {
          repetition: clone(DEFAULTS.zhRepetition),
          quality: clone(DEFAULTS.zhQuality),
          c4: clone(DEFAULTS.c4),
          fineweb: clone(DEFAULTS.zhFineweb),
        },
        c4RemoveLines: true,
      };
    case 'chat': {
      // Short conversational turns: no line/paragraph rules (greetings repeat). Calibrated on real chat data
      // (bench/data/chat-filter.ts: BANKING77, CLINC150, xSID, ABCD; CrossWOZ, xSID zh): a short turn repeats a
      // word naturally ("景点…这个景点周边还有其它景点", "exchange rate … official interbank exchange rate"), so
      // top_n_gram needs the n-gram 5+ times; texts of 20+ characters are checked, so short spam ("加微信领红包"
      // × 8, "哈哈哈…", copy-paste loops) is still caught. See docs/data.md for the figures.
      const rep = (base: RepetitionConfig): RepetitionConfig => ({
        ...clone(base),
        dupLineFrac: null,
        dupParaFrac: null,
        dupLineCharFrac: null,
        dupParaCharFrac: null,
        minChars: 20,
        topNGramMinCount: 5,
      });
      return {
        length: { minChars: 2, maxChars: 32_000, minWords: null, maxWords: null },
        lang: { allowed: ['zh', 'en'], minScore: 0.3 },
        en: { ...off, repetition: rep(DEFAULTS.enRepetition) },
        zh: { ...off, repetition: rep(DEFAULTS.zhRepetition) },
        c4RemoveLines: false,
      };
    }
    case 'minimal':
      return { length: clone(DEFAULTS.length), lang: false, en: { ...off }, zh: { ...off }, c4RemoveLines: false };
    case 'none':
      return { length: false, lang: false, en: { ...off }, zh: { ...off }, c4RemoveLines: false };
  }
}
