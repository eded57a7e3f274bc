/**
 * The models a gateway serves, behind one shape: local model folders (with named adapters), OpenAI-compatible
 * upstreams (timeout, retries, per-upstream concurrency, fallback chain), GGUF files through llama.cpp
 * (gguf-backend.ts).
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { loadPromptRef } from '../config/prompt.ts';
import type { ServeModelConfig } from '../config/serve.ts';
import type { ChatModel, ChatResult, GenerationSettings, Message } from '../core/types.ts';
import { mergedFolderFor } from '../eval/suite/models.ts';
import { LocalChatModel } from '../generate/chat-model.ts';
import { generateText } from '../generate/generate.ts';
import { OpenAICompatibleModel } from '../providers/openai-compatible.ts';
import { refuseUnsupported } from './capabilities.ts';
import { jsonObjectHook } from './json-mode.ts';
import type { Limiter } from './limiter.ts';
import { combineHooks, logprobHook, type TokenLogprob } from './logprobs.ts';
import { PromptedBackend } from './prompted.ts';
import { ApiError } from './protocol.ts';
import { BatchScheduler } from './scheduler.ts';

/** OpenAI `response_format` past `text`: the backend must return JSON (json_schema: matching the schema). */
export type ResponseFormat = { type: 'json_object' } | { type: 'json_schema'; name: string; schema: unknown };

export interface GenerateRequest {
  messages?: Message[];
  /** Raw prompt for /v1/completions (no chat template). */
  prompt?: string;
  settings: GenerationSettings;
  adapter?: string;
  signal: AbortSignal;
  onText?: (delta: string) => void;
  responseFormat?: ResponseFormat;
  /** Alternatives to report per generated token (0 = the chosen token's logprob only); absent = no logprobs. */
  logprobs?: number;
  /** Told each generated token's logprobs (with `logprobs`), before the text it completes goes to onText. */
  onLogprob?: (e: TokenLogprob) => void;
}

export interface ServedModel {
  readonly name: string;
  readonly backend: 'local' | 'upstream' | 'gguf' | 'chat';
  readonly adapters: readonly string[];
  readonly fallback: readonly string[];
  readonly limiter?: Limiter;
  generate(req: GenerateRequest): Promise<ChatResult>;
  close(): Promise<void>;
}

/** Any ChatModel (the eval stand-in, tests): chat only, one reply at a time per call. */
export class ChatModelBackend implements ServedModel {
  readonly backend = 'chat' as const;
  readonly adapters: string[] = [];
  readonly fallback: string[] = [];
  constructor(
    readonly name: string,
    private readonly model: ChatModel,
    readonly limiter?: Limiter,
  ) {}
  generate(req: GenerateRequest): Promise<ChatResult> {
    return chatOnly(`model "${this.name}"`, this.model, req);
  }
  async close(): Promise<void> {}
}

/** The request's chat turns; a plain completion (prompt only) is refused for chat-only backends. */
function chatMessages(what: string, req: GenerateRequest): Message[] {
  if (req.messages) return req.messages;
  throw new ApiError(
    400,
    `${what} serves chat completions only`,
    'invalid_request_error',
    'model',
    'unsupported_endpoint',
  );
}

/** A whole-reply chat over any ChatModel: refuses plain completions, hands the reply to a stream as one delta. */
async function chatOnly(what: string, model: ChatModel, req: GenerateRequest): Promise<ChatResult> {
  refuseUnsupported(what, req);
  const messages = chatMessages(what, req);
  const r = await model.chat(messages, req.settings, req.signal);
  if (r.text) req.onText?.(r.text);
  return r;
}

class LocalBackend implements ServedModel {
  readonly backend = 'local' as const;
  readonly fallback: string[] = [];
  private constructor(
    readonly name: string,
    private readonly models: Map<string, LocalChatModel>,
    readonly limiter: Limiter,
    private readonly schedulers: BatchScheduler[],
  ) {}

  get adapters(): string[] {
    return [...this.models.keys()].filter((k) => k !== '');
  }

  static async open(
    cfg: Extract<ServeModelConfig, { backend: 'local' }>,
    baseDir: string,
    limiter: Limiter,
  ): Promise<LocalBackend> {
    const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
    const opts = { template: cfg.template, threads: cfg.threads };
    const models = new Map<string, LocalChatModel>();
    models.set('', await LocalChatModel.fromFolder(at(cfg.path), { ...opts, id: cfg.name }));
    for (const [a, p] of Object.entries(cfg.adapters)) {
      // A PEFT LoRA folder is merged into the base once (cached, as evaluation does); a full folder loads as is.
      const dir = existsSync(join(at(p), 'adapter_config.json')) ? mergedFolderFor(at(cfg.path), at(p)) : at(p);
      models.set(a, await LocalChatModel.fromFolder(dir, { ...opts, id: `${cfg.name}:${a}` }));
    }
    // Continuous batching: the requests holding the limiter's slots share one decode step per model (and adapter).
    const schedulers = [...models.values()].map((m) => {
      const s = new BatchScheduler(m.lm, { maxBatch: limiter.concurrency });
      m.runIds = s.run;
      return s;
    });
    return new LocalBackend(cfg.name, models, limiter, schedulers);
  }

  async generate(req: GenerateRequest): Promise<ChatResult> {
    refuseUnsupported(`model "${this.name}"`, req, { json_object: true, logprobs: true });
    // Adapter names are map keys from the config, never joined into a path: "../x" simply is not found.
    const m = this.models.get(req.adapter ?? '');
    if (!m)
      throw new ApiError(
        404,
        `model "${this.name}:${req.adapter}" does not exist`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    // JSON mode and logprobs ride on the sampler's token hook (the EOS set is generateText's default).
    const eos = [...m.tokenizer.eosIds, ...m.lm.config.eosTokenId];
    const hook = combineHooks(
      req.responseFormat?.type === 'json_object'
        ? jsonObjectHook(m.tokenizer, eos, req.settings.maxNewTokens)
        : undefined,
      req.logprobs !== undefined ? logprobHook(m.tokenizer, eos, req.logprobs, (e) => req.onLogprob?.(e)) : undefined,
    );
    if (req.messages) return m.chatStream(req.messages, { ...req.settings, hook }, (d) => req.onText?.(d), req.signal);
    const ids = await m.tokenizer.encode(req.prompt ?? '', { addSpecialTokens: true });
    const settings = { ...req.settings, hook, maxNewTokens: req.settings.maxNewTokens ?? 256 };
    const [r] = await generateText(m.lm, m.tokenizer, [ids], {
      ...settings,
      signal: req.signal,
      runIds: m.runIds,
      onText: (_r, d) => req.onText?.(d),
    });
    const t = r!;
    return {
      text: t.text,
      usage: { promptTokens: t.promptTokens, completionTokens: t.ids.length },
      finishReason: t.finishReason === 'length' ? 'length' : t.finishReason === 'aborted' ? 'error' : 'stop',
    };
  }

  async close(): Promise<void> {
    for (const s of this.schedulers) await s.close();
    for (const m of this.models.values()) await m.close();
  }
}

class UpstreamBackend implements ServedModel {
  readonly backend = 'upstream' as const;
  readonly adapters: string[] = [];
  readonly fallback: string[];
  private readonly model: OpenAICompatibleModel;
  constructor(cfg: Extract<ServeModelConfig, { backend: 'upstream' }>) {
    this.name = cfg.name;
    this.fallback = cfg.fallback;
    this.model = new OpenAICompatibleModel({
      provider: cfg.provider,
      baseURL: cfg.base_url,
      model: cfg.model,
      apiKeyEnv: cfg.api_key_env,
      concurrency: cfg.concurrency,
      maxRetries: cfg.retries,
      timeoutMs: cfg.timeout_ms,
      backoffMs: 100,
    });
  }
  readonly name: string;
  generate(req: GenerateRequest): Promise<ChatResult> {
    const what = `model "${this.name}" (upstream)`;
    refuseUnsupported(what, req, { json_object: true, json_schema: true });
    const messages = chatMessages(what, req);
    // Always streamed from the upstream: deltas pass through as they arrive (and TTFT is measured for JSON replies
    // too); response_format goes to the provider as sent.
    const f = req.responseFormat;
    const response_format =
      f?.type === 'json_schema' ? { type: 'json_schema', json_schema: { name: f.name, schema: f.schema } } : f;
    return this.model.complete(messages, req.settings, {
      signal: req.signal,
      onText: (d) => req.onText?.(d),
      extraBody: response_format ? { response_format } : undefined,
    });
  }
  async close(): Promise<void> {}
}

export async function openBackend(cfg: ServeModelConfig, baseDir: string, limiter: Limiter): Promise<ServedModel> {
  // The prompt file is read first: a bad reference fails before a model is loaded.
  const prompt = cfg.prompt ? loadPromptRef(cfg.prompt, baseDir).spec : undefined;
  const m = await openRawBackend(cfg, baseDir, limiter);
  return prompt ? new PromptedBackend(m, prompt) : m;
}

async function openRawBackend(cfg: ServeModelConfig, baseDir: string, limiter: Limiter): Promise<ServedModel> {
  if (cfg.backend === 'local') return LocalBackend.open(cfg, baseDir, limiter);
  if (cfg.backend === 'upstream') return new UpstreamBackend(cfg);
  const { GgufBackend } = await import('./gguf-backend.ts');
  return GgufBackend.open(cfg, baseDir, limiter);
}
