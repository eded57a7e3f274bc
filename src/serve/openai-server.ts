import Fastify, { type FastifyInstance } from 'fastify';
import { LoomError } from '../core/errors.ts';
import type { ChatModel, Message } from '../core/types.ts';

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Name reported by /v1/models and echoed in responses. */
  modelName?: string;
}

interface ChatBody {
  model?: string;
  messages: Message[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  presence_penalty?: number;
  frequency_penalty?: number;
}

const chatSchema = {
  body: {
    type: 'object',
    required: ['messages'],
    properties: {
      model: { type: 'string' },
      messages: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['role', 'content'],
          properties: { role: { enum: ['system', 'user', 'assistant', 'tool'] }, content: { type: 'string' } },
        },
      },
      max_tokens: { type: 'integer', minimum: 1 },
      temperature: { type: 'number', minimum: 0 },
      top_p: { type: 'number' },
      seed: { type: 'integer' },
    },
  },
} as const;

/**
 * A minimal OpenAI-compatible server (POST /v1/chat/completions, GET /v1/models) over any ChatModel: the stand-in
 * endpoint for offline examples and the seed of `loom serve`. No streaming yet.
 */
export async function serveChatModel(
  model: ChatModel,
  opts: ServeOptions = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });
  const name = opts.modelName ?? model.id;
  app.get('/v1/models', async () => ({ object: 'list', data: [{ id: name, object: 'model', owned_by: 'loom' }] }));
  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: chatSchema }, async (req) => {
    const b = req.body;
    const r = await model.chat(b.messages, {
      maxNewTokens: b.max_tokens,
      temperature: b.temperature,
      topP: b.top_p,
      seed: b.seed,
      stop: typeof b.stop === 'string' ? [b.stop] : b.stop,
      presencePenalty: b.presence_penalty,
      frequencyPenalty: b.frequency_penalty,
    });
    return {
      id: `chatcmpl-${Date.now().toString(36)}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: b.model ?? name,
      choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finishReason }],
      usage: {
        prompt_tokens: r.usage.promptTokens,
        completion_tokens: r.usage.completionTokens,
        total_tokens: r.usage.promptTokens + r.usage.completionTokens,
      },
    };
  });
  const host = opts.host ?? '127.0.0.1';
  let url: string;
  try {
    url = await app.listen({ host, port: opts.port ?? 0 });
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new LoomError('NETWORK', `cannot listen on ${host}:${opts.port ?? 0}: ${code ?? (e as Error).message}`, {
      hint: code === 'EADDRINUSE' ? 'the port is taken (another stand-in or server?): pick another --port' : undefined,
      cause: e,
    });
  }
  return { app, url: `${url}/v1` };
}
