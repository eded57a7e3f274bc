/**
 * Config of the guard stage (src/guard). serve.yaml embeds one `guard:` block per route or model; `routes`
 * overrides top-level keys for one route/model name (see `resolveGuardConfig`).
 */
import { z } from 'zod';

const harmCategory = z.enum(['violence', 'self_harm', 'sexual', 'hate', 'crime', 'privacy', 'politics', 'off_topic']);
const guardAction = z.enum(['block', 'mask', 'flag']);

const base = z
  .object({
    enabled: z.boolean().default(true),
    /** Score at or above which a label fires (rules and similarity both give scores in [0, 1]). */
    thresholds: z
      .object({
        injection: z.number().min(0).max(1).default(0.75),
        jailbreak: z.number().min(0).max(1).default(0.75),
        harmful: z.number().min(0).max(1).default(0.8),
      })
      .strict()
      .default({ injection: 0.75, jailbreak: 0.75, harmful: 0.8 }),
    /** Harmful-content categories checked; politics and off_topic are opt-in (operator's choice). */
    categories: z.array(harmCategory).default(['violence', 'self_harm', 'sexual', 'hate', 'crime', 'privacy']),
    /** What happens when a label fires. `mask` replaces the matched phrase with "[removed]" (a refusal when the
     *  label still fires afterwards, e.g. an obfuscated copy); PII and links have their own switches below. */
    actions: z
      .object({
        injection: guardAction.default('block'),
        jailbreak: guardAction.default('block'),
        harmful: guardAction.default('block'),
      })
      .strict()
      .default({ injection: 'block', jailbreak: 'block', harmful: 'block' }),
    similarity: z
      .object({
        /** JSONL of {"text","label"} known attacks; default: the committed data/guard/attacks.jsonl. */
        store: z.string().optional(),
        /** Containment score scaled into the label score: score = containment * weight. */
        weight: z.number().min(0).max(1).default(0.95),
        enabled: z.boolean().default(true),
      })
      .strict()
      .default({ weight: 0.95, enabled: true }),
    classifier: z
      .object({
        /** The classifier layer (a model trained with `loom guard train-classifier`); off unless enabled. */
        enabled: z.boolean().default(false),
        /** Classification folder; default: the committed data/guard/classifier. */
        model: z.string().optional(),
        /** Class probability scaled into the label score: score = p * weight (then noisy-or with the rules). */
        weight: z.number().min(0).max(1).default(0.9),
        /** Probabilities below this are ignored (a weak classifier signal never adds up with a weak rule). */
        min_p: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .default({ enabled: false, weight: 0.9, min_p: 0.5 }),
    pii: z
      .object({
        /** Mask PII (data stage detectors) in input and output; `flag` only reports it. */
        action: z.enum(['mask', 'flag', 'off']).default('mask'),
      })
      .strict()
      .default({ action: 'mask' }),
    links: z
      .object({
        /** Hosts (and their subdomains) allowed in output; others are masked. Empty list = links not checked. */
        allow: z.array(z.string()).default([]),
      })
      .strict()
      .default({ allow: [] }),
    /** Canary token planted in system prompts; its appearance in output is a prompt leak. */
    canary: z.string().min(8).optional(),
    /** Characters held back by the streaming moderator so a violating phrase is never sent half-way. */
    hold_back: z.number().int().min(0).max(4096).default(64),
    /**
     * Work cap: the most characters one check reads (an input's user and tool turns together, or one answer).
     * Bounds a pathological paste (a 1 MB text) instead of scanning it all on every request.
     */
    max_chars: z.number().int().min(256).default(32000),
    /** Over max_chars: `block` refuses with a message naming the limit; `scan_ends` checks the first and last
     *  max_chars / 2 characters and flags (never allows) the text. */
    over_limit: z.enum(['block', 'scan_ends']).default('block'),
  })
  .strict();

export const guardConfig = base.extend({
  routes: z.record(z.string(), base.partial()).default({}),
});
export type GuardConfig = z.infer<typeof guardConfig>;
export type GuardConfigInput = z.input<typeof guardConfig>;

/** The config for one route/model: top-level keys with that route's overrides on top. */
export function resolveGuardConfig(cfg: GuardConfig, route?: string): GuardConfig {
  const o = route === undefined ? undefined : cfg.routes[route];
  if (!o) return cfg;
  const defined = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return { ...cfg, ...defined, routes: cfg.routes };
}
