/**
 * Config schemas of the data stage's dedup, boilerplate, split and shard parts (YAML keys in snake_case).
 *
 *   exactDedupConfig    → exactDedupStep(cfg)       (src/data/dedup/exact.ts)
 *   nearDedupConfig     → nearDedupStep(cfg)        (src/data/dedup/near.ts)
 *   boilerplateConfig   → boilerplateStep(cfg)      (src/data/dedup/boilerplate.ts)
 *   splitConfig         → assignSplits(rows, cfg)   (src/data/split.ts)
 *
 * Defaults follow FineWeb's published MinHash setup (112 permutations = 14 bands x 8 rows, word
 * 5-grams) and the near-dup benchmark in bench/data/neardup.ts (docs/data.md explains each choice).
 */
import { z } from 'zod';

const keepPolicy = z.enum(['first', 'longest', 'quality']);
export type KeepPolicy = z.infer<typeof keepPolicy>;

export const exactDedupConfig = z
  .object({
    /** Lowercase before hashing. */
    lowercase: z.boolean().default(true),
    /** Ignore all whitespace and punctuation/symbols (so "Hi, there!" equals "hi there"). */
    ignore_punctuation: z.boolean().default(false),
  })
  .strict();
export type ExactDedupConfig = z.infer<typeof exactDedupConfig>;

export const nearDedupConfig = z
  .object({
    /** Shingle length in tokens for Latin-dominant text (a token is a run of letters/digits). */
    shingle_words: z.number().int().min(1).max(32).default(5),
    /** Shingle length in tokens for CJK-dominant text (a token is one Han/Kana/Hangul character). */
    shingle_chars: z.number().int().min(1).max(32).default(5),
    num_perm: z.number().int().min(8).max(1024).default(112),
    bands: z.number().int().min(1).default(14),
    rows_per_band: z.number().int().min(1).default(8),
    /** Seed of the permutation parameters; all shards of one corpus must use the same seed. */
    seed: z.number().int().default(42),
    /** Check each LSH candidate pair by estimated Jaccard (signature agreement) before joining clusters. */
    verify: z.boolean().default(false),
    /** Estimated-Jaccard threshold used when `verify` is on. */
    threshold: z.number().min(0).max(1).default(0.7),
    keep: keepPolicy.default('first'),
    /** Numeric meta field read by `keep: quality` (higher wins; missing counts as -Infinity). */
    quality_field: z.string().default('quality'),
    /** `drop` removes duplicates; `mark` keeps every row and only tags `meta.dup_cluster`. */
    action: z.enum(['drop', 'mark']).default('drop'),
    /** Worker threads for hashing: 'auto' = one per core (started only for inputs above ~2 MB). 0 = inline. */
    workers: z.union([z.literal('auto'), z.number().int().min(0).max(64)]).default('auto'),
    /** When set, write the LSH band keys of every row here (for cross-shard merge, see src/data/shard.ts). */
    bands_out: z.string().optional(),
    /**
     * Never drop a row as a near-duplicate of a keeper whose numbers differ (neither's number sequence is a
     * subsequence of the other's): "第 13 期 … 满 300" and "第 3 期 … 满 200" share every shingle once digits count
     * as 0, but are different facts. Deleted text (a number missing on one side) still merges.
     */
    numbers_must_match: z.boolean().default(true),
    /**
     * The same for named entities (Latin product words, Han names with a place/shop suffix, bracketed branches,
     * titled person names; src/data/dedup/facts.ts): "推荐您去北京人卫酒店" never merges with "…北京国宾酒店".
     */
    entities_must_match: z.boolean().default(true),
  })
  .strict()
  .refine((c) => c.bands * c.rows_per_band <= c.num_perm, {
    message: 'bands * rows_per_band must not exceed num_perm',
    path: ['bands'],
  });
export type NearDedupConfig = z.infer<typeof nearDedupConfig>;

export const boilerplateConfig = z
  .object({
    /** A line is boilerplate when it occurs in at least this many different rows. */
    min_docs: z.number().int().min(2).default(5),
    /** Lines shorter than this (after trimming) are never treated as boilerplate. */
    min_chars: z.number().int().min(1).default(8),
    /** Compare lines case-insensitively. */
    lowercase: z.boolean().default(true),
  })
  .strict();
export type BoilerplateConfig = z.infer<typeof boilerplateConfig>;

const splitShare = z.number().min(0);
export const splitConfig = z
  .object({
    /** Fractions (sum 1) or, with `by: count`, row counts for validation/test (train takes the rest). */
    by: z.enum(['ratio', 'count']).default('ratio'),
    train: splitShare.default(0.8),
    validation: splitShare.default(0.1),
    test: splitShare.default(0.1),
    seed: z.number().int().default(42),
    /** Keep each label's share equal across splits (rows without a label form their own stratum). */
    stratify: z.boolean().default(false),
    /** Keep near-dup clusters (meta.dup_cluster) and exact-duplicate texts in one split. */
    leak_free: z.boolean().default(true),
  })
  .strict()
  .refine((c) => c.by === 'count' || Math.abs(c.train + c.validation + c.test - 1) < 1e-6, {
    message: 'with by: ratio, train + validation + test must sum to 1',
    path: ['train'],
  });
export type SplitConfig = z.infer<typeof splitConfig>;
