/**
 * serve.yaml: the models a `loom serve` gateway exposes and the limits that protect it.
 *
 *   models:
 *     - { name: support, backend: local, path: runs/base, adapters: { faq: runs/sft-1 } }
 *     - { name: gpt, backend: upstream, provider: openai, model: gpt-4o-mini, fallback: [qwen] }
 *     - { name: qwen, backend: upstream, provider: dashscope, model: qwen-plus, timeout_ms: 30000, retries: 2 }
 *     - { name: faq, backend: upstream, provider: dashscope, model: qwen-turbo, prompt: prompts/faq.yaml@2 }
 *   guard:                      # src/config/guard.ts; absent = no guard. `routes` is keyed by model name.
 *     actions: { harmful: block }
 *     routes: { gpt: { pii: { action: flag } } }
 */
import { z } from 'zod';
import { PROMPT_REF } from './eval.ts';
import { guardConfig } from './guard.ts';
import { type LoadedConfig, loadConfig } from './load.ts';

/** Names become lookup keys in `model: "base:adapter"`, so they carry no path separators or dots-only forms. */
const SERVE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const name = z
  .string()
  .regex(SERVE_NAME, 'must be 1-64 letters, digits, "_", "-" or "." and start with a letter or digit');

/**
 * A prompt file applied to every chat this model serves (`prompts/faq.yaml@2`, relative to serve.yaml): its system
 * text replaces the client's, its few-shot turns come next (src/config/prompt.ts).
 */
const promptRef = z
  .string()
  .regex(PROMPT_REF, 'a prompt file reference: prompts/<name>.yaml or prompts/<name>.yaml@<version>')
  .optional();

const local = z
  .object({
    name,
    backend: z.literal('local'),
    path: z.string().min(1),
    /** Adapter name → a PEFT LoRA folder (merged into the base once) or a full model folder. */
    adapters: z.record(name, z.string().min(1)).default({}),
    template: z.string().optional(),
    prompt: promptRef,
    threads: z.number().int().min(1).optional(),
    /** Sequences decoding together in one batched step (continuous batching); more wait in the queue. */
    concurrency: z.number().int().min(1).max(64).default(8),
  })
  .strict();

const upstream = z
  .object({
    name,
    backend: z.literal('upstream'),
    provider: z.string().optional(),
    base_url: z.string().url().optional(),
    model: z.string().min(1),
    prompt: promptRef,
    api_key_env: z.string().optional(),
    timeout_ms: z.number().int().min(1).default(60_000),
    retries: z.number().int().min(0).max(10).default(2),
    concurrency: z.number().int().min(1).max(1024).optional(),
    /** Names of other models tried in order when this one fails. */
    fallback: z.array(name).default([]),
  })
  .strict()
  .refine((m) => m.provider !== undefined || m.base_url !== undefined, {
    message: 'an upstream needs a provider preset or a base_url',
    path: ['provider'],
  });

const gguf = z
  .object({
    name,
    backend: z.literal('gguf'),
    /** A .gguf file (relative to serve.yaml), e.g. made by `loom export --format gguf`. */
    path: z.string().min(1),
    prompt: promptRef,
    threads: z.number().int().min(1).optional(),
    /** llama.cpp context per sequence; default: the model's trained context, at most 4096. */
    context_size: z.number().int().min(16).optional(),
    /** Sequences generating at once (llama.cpp batches them in one context); more wait in the queue. */
    concurrency: z.number().int().min(1).max(64).default(1),
  })
  .strict();

export const serveSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8000),
    models: z.array(z.discriminatedUnion('backend', [local, upstream, gguf])).min(1),
    limits: z
      .object({
        max_body_bytes: z.number().int().min(1024).default(1_048_576),
        max_tokens: z.number().int().min(1).default(1024),
        default_max_tokens: z.number().int().min(1).default(256),
        queue: z.number().int().min(0).default(32),
        timeout_ms: z.number().int().min(1).default(120_000),
        /** Refuse new generations (503 + Retry-After) above this resident memory; 0 = off. */
        rss_watermark_mb: z.number().min(0).default(0),
      })
      .strict()
      .prefault({}),
    /** One registry row per generation, PII-redacted before writing (src/registry/request-log.ts). */
    request_log: z
      .object({
        enabled: z.boolean().default(true),
        retention_days: z.number().min(0).default(30),
        max_chars: z.number().int().min(0).default(4000),
      })
      .strict()
      .prefault({}),
    /** Input and output guarding for every model; per-model overrides under `guard.routes.<model name>`. */
    guard: guardConfig.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.models.forEach((m, i) => {
      if (names.has(m.name))
        ctx.addIssue({ code: 'custom', message: `duplicate model name "${m.name}"`, path: ['models', i, 'name'] });
      names.add(m.name);
    });
    for (const r of Object.keys(c.guard?.routes ?? {})) {
      if (!names.has(r))
        ctx.addIssue({
          code: 'custom',
          message: `guard route "${r}" is not a model in this file`,
          path: ['guard', 'routes', r],
        });
    }
    c.models.forEach((m, i) => {
      if (m.backend !== 'upstream') return;
      m.fallback.forEach((f, j) => {
        if (!names.has(f) || f === m.name) {
          ctx.addIssue({
            code: 'custom',
            message: `fallback "${f}" is not another model in this file`,
            path: ['models', i, 'fallback', j],
          });
        }
      });
    });
  });

export type ServeConfig = z.output<typeof serveSchema>;
export type ServeModelConfig = ServeConfig['models'][number];

export function loadServeConfig(path: string, overrides: readonly string[] = []): LoadedConfig<ServeConfig> {
  return loadConfig(path, serveSchema, overrides);
}
