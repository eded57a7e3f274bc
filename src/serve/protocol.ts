/**
 * The OpenAI wire format `loom serve` accepts: zod schemas for request bodies, and the error envelope every
 * failure answers with (`{"error":{"message","type","param","code"}}`), so SDKs show the real reason.
 */
import { z } from 'zod';
import type { GenerationSettings, Message } from '../core/types.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Seconds, sent as Retry-After on 429/503. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalid = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, 'invalid_request_error', param, code);

const textPart = z.object({ type: z.literal('text'), text: z.string() }).passthrough();
const content = z.union([z.string(), z.array(textPart), z.null()]);
const message = z
  .object({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: content.optional(),
    name: z.string().optional(),
    tool_calls: z.array(z.unknown()).optional(),
    tool_call_id: z.string().optional(),
  })
  .passthrough();

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();
const sampling = {
  model: z.string().min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  stop,
  seed: z.number().int().nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  n: z.number().int().min(1).nullish(),
  user: z.string().optional(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().nullish(),
};

export const chatBody = z
  .object({
    ...sampling,
    messages: z.array(message).min(1),
    max_completion_tokens: z.number().int().min(1).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
    response_format: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('text') }).passthrough(),
        z.object({ type: z.literal('json_object') }).passthrough(),
        z
          .object({
            type: z.literal('json_schema'),
            json_schema: z
              .object({
                name: z.string().min(1).max(64),
                schema: z.record(z.string(), z.unknown()).optional(),
                strict: z.boolean().nullish(),
              })
              .passthrough(),
          })
          .passthrough(),
      ])
      .nullish(),
    tools: z.array(z.unknown()).optional(),
    tool_choice: z.unknown().optional(),
  })
  .passthrough();
export type ChatBody = z.output<typeof chatBody>;

export const completionBody = z
  .object({
    ...sampling,
    prompt: z.union([z.string(), z.array(z.string()).length(1)]),
    logprobs: z.number().int().min(0).max(5).nullish(),
  })
  .passthrough();
export type CompletionBody = z.output<typeof completionBody>;

/** What a backend is asked for beyond plain text (GenerateRequest fields). */
export interface RequestExtras {
  responseFormat?: { type: 'json_object' } | { type: 'json_schema'; name: string; schema: unknown };
  logprobs?: number;
}

export function chatExtras(c: ChatBody): RequestExtras {
  const out: RequestExtras = {};
  const f = c.response_format;
  if (f?.type === 'json_object') out.responseFormat = { type: 'json_object' };
  if (f?.type === 'json_schema')
    out.responseFormat = { type: 'json_schema', name: f.json_schema.name, schema: f.json_schema.schema ?? {} };
  if (c.top_logprobs && !c.logprobs)
    throw invalid('top_logprobs needs logprobs: true', 'top_logprobs', 'invalid_value');
  if (c.logprobs) out.logprobs = c.top_logprobs ?? 0;
  return out;
}

/** Completions' `logprobs: n` asks for the n most likely alternatives per token (0 = the chosen one only). */
export function completionExtras(c: CompletionBody): RequestExtras {
  return typeof c.logprobs === 'number' ? { logprobs: c.logprobs } : {};
}

/** Parses a body or throws a 400 naming the first offending field (the SDKs surface `param`). */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('request body must be a JSON object', null, 'invalid_body');
  }
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  const param = i.path.length ? i.path.join('.') : null;
  throw invalid(`${param ?? 'body'}: ${i.message}`, param, 'invalid_value');
}

/** Flattens content parts into the plain-text messages chat templates take; tool turns keep their role. */
export function toMessages(body: ChatBody): Message[] {
  return body.messages.map((m) => {
    const c = m.content;
    const text = typeof c === 'string' ? c : Array.isArray(c) ? c.map((p) => p.text).join('') : '';
    const role = m.role === 'developer' ? 'system' : m.role;
    return { role, content: text } as Message;
  });
}

/** Request fields → engine settings; refuses what the backend cannot honour instead of silently ignoring it. */
export function toSettings(
  b: {
    temperature?: number | null;
    top_p?: number | null;
    stop?: string | string[] | null;
    seed?: number | null;
    presence_penalty?: number | null;
    frequency_penalty?: number | null;
    n?: number | null;
  },
  maxTokens: number,
): GenerationSettings {
  if ((b.n ?? 1) !== 1) throw invalid('only n=1 is supported', 'n', 'unsupported_value');
  return {
    maxNewTokens: maxTokens,
    temperature: b.temperature ?? undefined,
    topP: b.top_p ?? undefined,
    seed: b.seed ?? undefined,
    stop: typeof b.stop === 'string' ? [b.stop] : (b.stop ?? undefined),
    presencePenalty: b.presence_penalty ?? undefined,
    frequencyPenalty: b.frequency_penalty ?? undefined,
  };
}
