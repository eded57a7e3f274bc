/**
 * Config schemas of the data stage's ingest, normalise, quality-filter and PII parts (YAML keys in snake_case,
 * like the rest of Loom's configs).
 *
 *   ingestConfig     → readInputs(patterns, ingestOptions(cfg, baseDir))   (src/data/ingest/index.ts)
 *   normalizeConfig  → normalizeStep(cfg)                                  (src/data/normalize.ts)
 *   filtersConfig    → qualityFilterStep(cfg)                              (src/data/filters/index.ts)
 *   piiConfig        → piiStep(cfg)                                        (src/data/pii.ts)
 *
 * Filters: `preset` (web | chat | minimal | none) supplies every threshold; any key given here overrides the
 * preset's value, `false` switches a rule group off, and `null` switches off a single threshold.
 */
import { z } from 'zod';

const thr = z.number().nullable();
const nFrac = z.array(z.tuple([z.number().int().min(1).max(20), z.number().min(0)]));

export const ingestConfig = z
  .object({
    format: z.enum(['auto', 'jsonl', 'json', 'csv', 'tsv', 'parquet', 'txt', 'md', 'html']).default('auto'),
    encoding: z.enum(['auto', 'utf8', 'utf8-bom', 'utf16le', 'utf16be', 'gb18030']).default('auto'),
    /** TXT inputs: one document per non-blank line, or per blank-line-separated block. */
    txt_mode: z.enum(['line', 'block']).default('line'),
    /** Source field / CSV column for each row field, e.g. `{ text: question, label: intent }`. */
    columns: z
      .object({
        text: z.string(),
        label: z.string(),
        messages: z.string(),
        prompt: z.string(),
        chosen: z.string(),
        rejected: z.string(),
        id: z.string(),
      })
      .partial()
      .strict()
      .default({}),
    delimiter: z.string().length(1).optional(),
    /** Whole-file formats (JSON arrays, Markdown, HTML) above this many MiB are refused. */
    max_whole_file_mb: z.number().positive().default(256),
  })
  .strict();
export type IngestConfig = z.infer<typeof ingestConfig>;

export const normalizeConfig = z
  .object({
    enabled: z.boolean().default(true),
    html: z.boolean().default(true),
    controls: z.boolean().default(true),
    zero_width: z.boolean().default(true),
    bidi: z.boolean().default(true),
    fullwidth: z.boolean().default(true),
    nfkc: z.boolean().default(true),
    /** keep: ，！？：；（）… stay full-width next to CJK text; ascii: convert them everywhere (plain NFKC). */
    cjk_punct: z.enum(['keep', 'ascii']).default('keep'),
    /** Traditional → Simplified Chinese (opencc-js source variant), or false. */
    t2s: z.union([z.literal(false), z.enum(['t', 'tw', 'hk'])]).default(false),
    whitespace: z.boolean().default(true),
    /**
     * Which changed rows go to rejects (as action `changed`): all (the default: nothing changes silently), a
     * sample of `sample_size` per change kind (for web-scale corpora, where NFKC/whitespace touch most rows and
     * `all` would copy the corpus into rejects), or none (counters only).
     */
    log_changes: z.enum(['none', 'sample', 'all']).default('all'),
    sample_size: z.number().int().min(0).default(20),
  })
  .strict();
export type NormalizeConfig = z.infer<typeof normalizeConfig>;

const lengthRule = z.object({ min_chars: thr, max_chars: thr, min_words: thr, max_words: thr }).partial().strict();
const langRule = z
  .object({ allowed: z.array(z.enum(['zh', 'en', 'other'])).min(1), min_score: z.number().min(0).max(1) })
  .partial()
  .strict();
const repetitionRule = z
  .object({
    dup_line_frac: thr,
    dup_para_frac: thr,
    dup_line_char_frac: thr,
    dup_para_char_frac: thr,
    top_n_grams: nFrac,
    dup_n_grams: nFrac,
    min_chars: z.number().min(0),
    /** top_n_gram fires only when the most common n-gram occurs at least this often (2 = repeated at all). */
    top_n_gram_min_count: z.number().int().min(1),
  })
  .partial()
  .strict();
const gopherQualityRule = z
  .object({
    min_words: thr,
    max_words: thr,
    min_avg_word_len: thr,
    max_avg_word_len: thr,
    max_symbol_word_ratio: thr,
    max_bullet_lines_ratio: thr,
    max_ellipsis_lines_ratio: thr,
    min_alpha_words_ratio: thr,
    min_stop_words: thr,
    stop_words: z.array(z.string()),
  })
  .partial()
  .strict();
const zhQualityRule = z
  .object({
    min_chars: thr,
    max_chars: thr,
    min_han_ratio: thr,
    max_symbol_char_ratio: thr,
    max_bullet_lines_ratio: thr,
    max_ellipsis_lines_ratio: thr,
    min_stop_words: thr,
    stop_words: z.array(z.string()),
  })
  .partial()
  .strict();
const c4Rule = z
  .object({
    terminal_punct: z.boolean(),
    min_words_per_line: z.number().int().min(0),
    min_sentences: z.number().int().min(0),
    max_word_length: z.number().int().min(1),
    lorem_ipsum: z.boolean(),
    javascript: z.boolean(),
    curly_bracket: z.boolean(),
    policy: z.boolean(),
    remove_citations: z.boolean(),
  })
  .partial()
  .strict();
const finewebRule = z
  .object({
    line_punct_thr: thr,
    short_line_thr: thr,
    short_line_length: z.number().int().min(0),
    char_dup_ratio: thr,
    new_line_ratio: thr,
  })
  .partial()
  .strict();
const off = z.literal(false);
const ruleSet = <Q extends z.ZodType>(quality: Q) =>
  z
    .object({
      repetition: z.union([off, repetitionRule]),
      quality: z.union([off, quality]),
      c4: z.union([off, c4Rule]),
      fineweb: z.union([off, finewebRule]),
    })
    .partial()
    .strict();

export const filtersConfig = z
  .object({
    preset: z.enum(['web', 'chat', 'minimal', 'none']).default('web'),
    length: z.union([off, lengthRule]).optional(),
    lang: z.union([off, langRule]).optional(),
    en: ruleSet(gopherQualityRule).optional(),
    zh: ruleSet(zhQualityRule).optional(),
    /** C4 removes failing lines from `text` rows (logged as `changed`); false = only whole-row drops. */
    c4_remove_lines: z.boolean().optional(),
    /** Store `meta.lang` and `meta.lang_score` on kept rows. */
    tag_language: z.boolean().default(true),
    /** Worker threads for the rules: 'auto' = one per core (2..8), 0 or 1 = inline. */
    workers: z.union([z.literal('auto'), z.number().int().min(0).max(64)]).default('auto'),
    /** Workers start only once this much text (UTF-16 code units) has been seen; small inputs stay inline. */
    parallel_min_chars: z.number().int().min(0).default(2_000_000),
  })
  .strict();
export type FiltersConfig = z.infer<typeof filtersConfig>;

const PII_TYPES = [
  'email',
  'ipv4',
  'ipv6',
  'url',
  'cn_mobile',
  'cn_id',
  'bank_card',
  'phone_intl',
  'cn_landline',
  'qq',
  'cn_address',
  'person_name',
] as const;
/** Every type but url (links are rarely personal and often useful). */
export const DEFAULT_PII_TYPES = PII_TYPES.filter((t) => t !== 'url');
export type PiiType = (typeof PII_TYPES)[number];

export const piiConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** mask: replace spans with tokens; drop: remove rows that contain any PII. */
    action: z.enum(['mask', 'drop']).default('mask'),
    /** Types to detect (url is off by default: links are rarely personal and often useful). */
    types: z.array(z.enum(PII_TYPES)).default([...DEFAULT_PII_TYPES]),
    /** Replacement token per type. */
    tokens: z
      .object({
        email: z.string(),
        ipv4: z.string(),
        ipv6: z.string(),
        url: z.string(),
        cn_mobile: z.string(),
        cn_id: z.string(),
        bank_card: z.string(),
        phone_intl: z.string(),
        cn_landline: z.string(),
        qq: z.string(),
        cn_address: z.string(),
        person_name: z.string(),
      })
      .partial()
      .strict()
      .default({}),
    /** Drop a row (even in mask mode) when it holds more PII spans than this (Dolma uses 5); null = never. */
    max_spans: z.number().int().min(0).nullable().default(null),
    /** Only mask IPv4 addresses that are globally routable (FineWeb's choice); default masks all valid ones. */
    public_ip_only: z.boolean().default(false),
    /** Also scan string values in `meta` (e.g. extra CSV columns such as a phone field), at any depth. */
    scan_meta: z.boolean().default(true),
    /**
     * PII in rejects.jsonl. mask (default): every reject's row, raw text and detail is masked with the same types
     * and tokens, including rows dropped or changed by steps that run before this one (malformed lines, filters,
     * normalisation); keep: rejects hold the original text, PII included (for debugging on trusted machines).
     */
    rejects_pii: z.enum(['mask', 'keep']).default('mask'),
    /** Deprecated alias of `rejects_pii: keep` for the pii step's own rejects. */
    rejects_keep_original: z.boolean().default(false),
  })
  .strict();
export type PiiConfig = z.infer<typeof piiConfig>;
