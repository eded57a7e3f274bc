/**
 * The top-level `data.yaml` schema of `loom data run`: inputs, then the cleaning sections (src/config/data-clean.ts),
 * the dedup and split sections (src/config/data-dedup.ts), and the output. Relative paths resolve against the
 * folder of the YAML file. Any section can be switched off with `false`.
 *
 *   name: customer-service
 *   out_dir: out/data
 *   inputs:
 *     - path: raw/faq/*.csv          # file, folder or glob (or a list)
 *       formatting: alpaca           # record shape: auto | messages | text | classification | preference |
 *                                    #               alpaca | sharegpt | openai | llamafactory
 *       columns: { prompt: 问题, response: 答案 }
 *   normalize: { t2s: t }
 *   filters: { preset: chat }
 *   pii: { action: mask }
 *   dedup: { exact: {}, near: { threshold: 0.8, verify: true }, boilerplate: false }
 *   output: { format: messages, system_prompt: "…" }
 *   split: { train: 0.8, validation: 0.1, test: 0.1, seed: 42 }
 */
import { z } from 'zod';
import { filtersConfig, ingestConfig, normalizeConfig, piiConfig } from './data-clean.ts';
import { boilerplateConfig, exactDedupConfig, nearDedupConfig, splitConfig } from './data-dedup.ts';
import { FORMAT_NAMES } from './formats.ts';

/** What an input file's records are: any format Loom writes, a LLaMA-Factory registry, or detect per record. */
const RECORD_FORMATTINGS = ['auto', ...FORMAT_NAMES, 'llamafactory'] as const;
const OUTPUT_FORMATS = FORMAT_NAMES;

const INGEST_COLUMNS = ['text', 'label', 'messages', 'prompt', 'chosen', 'rejected', 'id'];
/** Formats whose `columns` are the importer's (LLaMA-Factory column names); the others map ingest fields. */
const IMPORTER_COLUMNS = new Set(['alpaca', 'sharegpt', 'openai', 'llamafactory']);

const sharegptTagsConfig = z
  .object({
    role_tag: z.string(),
    content_tag: z.string(),
    user_tag: z.string(),
    assistant_tag: z.string(),
    observation_tag: z.string(),
    function_tag: z.string(),
    system_tag: z.string(),
    /** Joins a turn whose content is a list of utterances (default a newline). */
    utterance_separator: z.string(),
  })
  .partial()
  .strict();

export const dataInputConfig = ingestConfig
  .omit({ columns: true })
  .extend({
    /** File, folder or glob (relative to the config file), or a list of them. */
    path: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** Name recorded in each row's `meta.origin` (default: the path). */
    name: z.string().optional(),
    formatting: z.enum(RECORD_FORMATTINGS).default('auto'),
    /**
     * alpaca/sharegpt/openai: LLaMA-Factory column names (prompt, query, response, system, history, messages,
     * tools, chosen, rejected). Other formattings: source field per row field (text, label, messages, …).
     */
    columns: z.record(z.string(), z.string()).default({}),
    /** sharegpt tag names (LLaMA-Factory `tags`). */
    tags: sharegptTagsConfig.optional(),
    /** llamafactory: dataset names to read from the dataset_info.json (all when empty). */
    datasets: z.array(z.string()).default([]),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (IMPORTER_COLUMNS.has(v.formatting)) return;
    for (const k of Object.keys(v.columns)) {
      if (!INGEST_COLUMNS.includes(k)) {
        ctx.addIssue({
          code: 'custom',
          path: ['columns', k],
          message: `unknown column "${k}" for formatting ${v.formatting} (allowed: ${INGEST_COLUMNS.join(', ')}; LLaMA-Factory column names need formatting alpaca or sharegpt)`,
        });
      }
    }
  });
export type DataInputConfig = z.infer<typeof dataInputConfig>;

const dataOutputConfig = z
  .object({
    format: z.enum(OUTPUT_FORMATS).default('messages'),
    /** System prompt for conversation rows (see system_mode). */
    system_prompt: z.string().optional(),
    /** default: add where missing; replace: every row gets system_prompt; keep: leave rows alone. */
    system_mode: z.enum(['default', 'replace', 'keep']).default('default'),
    /** Rename labels (e.g. source intents → your label set) before checking them. */
    label_map: z.record(z.string(), z.string()).default({}),
    /** Allowed labels; rows with another label are rejected (reason label.not_in_set). */
    labels: z.array(z.string()).optional(),
    /** Meta fields kept in the output rows: all (true), none (false), or the listed ones. */
    keep_meta: z.union([z.boolean(), z.array(z.string())]).default(true),
    /** Drop rows longer than this many tokens (needs `tokenizer`); the trainer would cut their answers off. */
    cutoff_len: z.number().int().positive().optional(),
    /**
     * A conversation that ends with user (or tool) turns after its last assistant turn: `trim` cuts it back to
     * that assistant turn and logs the cut turns in rejects (`format.trimmed_trailing_turns`, changed); `drop`
     * rejects the whole conversation (`format.last_not_assistant`).
     */
    trailing_user: z.enum(['trim', 'drop']).default('trim'),
    /** Write `dataset_info.json` so LLaMA-Factory can train on the output (formats it can read). */
    llamafactory: z.boolean().default(true),
  })
  .strict();
export type DataOutputConfig = z.infer<typeof dataOutputConfig>;

export const dataConfig = z
  .object({
    name: z.string().optional(),
    /** Output folder (relative to the config file). */
    out_dir: z.string().default('out/data'),
    /** tokenizer.json (or a model folder with one): token-length histograms, and `output.cutoff_len`. */
    tokenizer: z.string().optional(),
    inputs: z.array(dataInputConfig).min(1),
    normalize: z.union([z.literal(false), normalizeConfig]).prefault({}),
    filters: z.union([z.literal(false), filtersConfig]).default(false),
    pii: z.union([z.literal(false), piiConfig]).default(false),
    dedup: z
      .object({
        exact: z.union([z.literal(false), exactDedupConfig]).prefault({}),
        near: z.union([z.literal(false), nearDedupConfig]).default(false),
        boilerplate: z.union([z.literal(false), boilerplateConfig]).default(false),
      })
      .strict()
      .prefault({}),
    output: dataOutputConfig.prefault({}),
    split: z.union([z.literal(false), splitConfig]).prefault({}),
    report: z
      .object({
        title: z.string().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((c) => c.output.cutoff_len === undefined || c.tokenizer !== undefined, {
    message: 'output.cutoff_len needs a tokenizer (top-level `tokenizer:`)',
    path: ['output', 'cutoff_len'],
  });
export type DataConfig = z.infer<typeof dataConfig>;
export type DataConfigInput = z.input<typeof dataConfig>;
