import { z } from 'zod';

/** One model under test: a local Loom model folder (engine) or an OpenAI-compatible endpoint. */
const modelSpecSchema = z.discriminatedUnion('kind', [
  z
    .object({
      id: z.string().min(1),
      kind: z.literal('local'),
      path: z.string().min(1),
      adapter: z.string().optional(),
    })
    .strict(),
  z
    .object({
      id: z.string().min(1),
      kind: z.literal('endpoint'),
      provider: z.string().optional(),
      base_url: z.string().optional(),
      model: z.string().min(1),
      api_key_env: z.string().optional(),
      concurrency: z.number().int().positive().optional(),
      max_retries: z.number().int().min(0).default(4),
      timeout_ms: z.number().int().positive().default(60_000),
    })
    .strict(),
]);
export type ModelSpec = z.infer<typeof modelSpecSchema>;

const turnSchema = z.object({ user: z.string(), assistant: z.string() }).strict();

/** A versioned prompt: system text, few-shot turns and a user template over the dataset row's fields. */
export const promptSchema = z
  .object({
    id: z.string().min(1),
    version: z.union([z.string(), z.number()]).default(1),
    system: z.string().optional(),
    few_shot: z.array(turnSchema).default([]),
    /** Jinja template rendered with the row (e.g. `{{ question }}`); default: the row's last user turn. */
    user: z.string().optional(),
  })
  .strict();
export type PromptSpec = z.infer<typeof promptSchema>;

/** A prompt file in the project, `prompts/<name>.yaml` or `prompts/<name>.yaml@<version>` (src/config/prompt.ts). */
export const PROMPT_REF = /^(.+\.ya?ml)(?:@([\w.-]+))?$/;

const generationSchema = z
  .object({
    max_new_tokens: z.number().int().positive().default(128),
    temperature: z.number().min(0).default(0),
    top_p: z.number().gt(0).max(1).optional(),
    seed: z.number().int().default(0),
    stop: z.array(z.string()).optional(),
  })
  .default({ max_new_tokens: 128, temperature: 0, seed: 0 });
export type GenerationSpec = z.infer<typeof generationSchema>;

const assertionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('contains'), value: z.string(), ignore_case: z.boolean().default(true) }).strict(),
  z
    .object({
      type: z.literal('contains_any'),
      value: z.array(z.string()).min(1),
      ignore_case: z.boolean().default(true),
    })
    .strict(),
  z.object({ type: z.literal('not_contains'), value: z.string(), ignore_case: z.boolean().default(true) }).strict(),
  z.object({ type: z.literal('regex'), value: z.string() }).strict(),
  z.object({ type: z.literal('not_regex'), value: z.string() }).strict(),
  z.object({ type: z.literal('max_length'), value: z.number().int().positive() }).strict(),
  z.object({ type: z.literal('json_schema'), value: z.record(z.string(), z.unknown()) }).strict(),
  z.object({ type: z.literal('refusal'), expected: z.boolean().default(true) }).strict(),
  z
    .object({
      type: z.literal('judge'),
      rubric: z.string().min(1),
      min_score: z.number(),
    })
    .strict(),
]);
export type Assertion = z.infer<typeof assertionSchema>;

/** A simulated-user conversation: scripted user turns, or a model playing a persona, with assertions. */
export const scenarioSchema = z
  .object({
    id: z.string().min(1),
    lang: z.enum(['zh', 'en']).default('en'),
    title: z.string().optional(),
    system: z.string().optional(),
    user: z.discriminatedUnion('mode', [
      z.object({ mode: z.literal('scripted'), turns: z.array(z.string().min(1)).min(1) }),
      z.object({
        mode: z.literal('simulated'),
        persona: z.string().min(1),
        opening: z.string().min(1),
        max_turns: z.number().int().positive().default(4),
      }),
    ]),
    /** Checked on every assistant turn. */
    per_turn: z.array(assertionSchema).default([]),
    /** Checked on specific assistant turns, keyed by 1-based turn number. */
    turns: z.record(z.string(), z.array(assertionSchema)).default({}),
    /** Checked once on the whole conversation transcript. */
    conversation: z.array(assertionSchema).default([]),
    /** The scenario's goal; the first assistant turn that satisfies it gives turns-to-resolution. */
    goal: z.array(assertionSchema).default([]),
    /** Rules whose failures count as policy violations (e.g. leaking an ID number, obeying an injection). */
    policy: z.array(assertionSchema).default([]),
  })
  .strict();
export type Scenario = z.infer<typeof scenarioSchema>;

const metricNames = z.enum(['bleu', 'chrf', 'chrf++', 'rouge', 'em', 'f1']);

const taskSchema = z.discriminatedUnion('kind', [
  z
    .object({
      id: z.string().min(1),
      kind: z.literal('generation'),
      dataset: z.string().min(1),
      metrics: z.array(metricNames).default(['bleu', 'chrf', 'rouge']),
      /** Tokenisation for BLEU/ROUGE: `zh` suits Chinese references, `13a` English, `auto` picks per dataset. */
      tokenize: z.enum(['auto', 'zh', '13a', 'intl', 'char']).default('auto'),
      limit: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({
      id: z.string().min(1),
      kind: z.literal('classification'),
      dataset: z.string().min(1),
      labels: z.array(z.string()).min(2),
      mode: z.enum(['generate', 'loglik']).default('generate'),
      limit: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({
      id: z.string().min(1),
      kind: z.literal('multiple_choice'),
      dataset: z.string().min(1),
      limit: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({
      id: z.string().min(1),
      kind: z.literal('conversation'),
      scenarios: z.array(z.string().min(1)).min(1),
      /** Model id (from `models`) that plays simulated users; required by `simulated` scenarios. */
      user_model: z.string().optional(),
    })
    .strict(),
]);
export type TaskSpec = z.infer<typeof taskSchema>;

/** `provider:model` → USD per million input and output tokens. */
export const priceTableSchema = z.record(
  z.string(),
  z.object({ input: z.number().min(0), output: z.number().min(0) }).strict(),
);

export const suiteSchema = z
  .object({
    name: z.string().min(1),
    models: z.array(modelSpecSchema).min(1),
    /** Inline prompts, or prompt files (`prompts/faq.yaml@2`) the runner loads relative to the suite. */
    prompts: z
      .array(
        z.union([
          promptSchema,
          z.string().regex(PROMPT_REF, 'a prompt file reference: prompts/<name>.yaml or prompts/<name>.yaml@<version>'),
        ]),
      )
      .default([{ id: 'default', version: 1, few_shot: [] }]),
    generation: generationSchema,
    tasks: z.array(taskSchema).min(1),
    /** Model id that scores `judge` assertions. */
    judge: z.object({ model: z.string(), scale: z.tuple([z.number(), z.number()]).default([1, 5]) }).optional(),
    /** USD per million tokens by model id (`provider:model`, or `endpoint:model` without a preset). */
    prices: priceTableSchema.default({}),
    /** A YAML file with the same shape as `prices` (relative to the suite); `prices` entries win over it. */
    prices_file: z.string().optional(),
    out_dir: z.string().default('out/eval'),
    cache: z.string().default('.loom/eval-cache.sqlite'),
    bootstrap: z
      .object({ samples: z.number().int().positive().default(1000), seed: z.number().int().default(12345) })
      .default({
        samples: 1000,
        seed: 12345,
      }),
  })
  .strict();
export type SuiteConfig = z.infer<typeof suiteSchema>;
