import type { FastifyInstance } from 'fastify';
import { LoomError } from '../core/errors.ts';
import type { ChatModel } from '../core/types.ts';
import { buildGateway, type Gateway, type GatewayOptions } from './app.ts';
import { ChatModelBackend } from './backends.ts';

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Name reported by /v1/models and echoed in responses. */
  modelName?: string;
}

/** Listens, turning EADDRINUSE and friends into a LoomError with a hint. Returns the base URL (no /v1). */
export async function listenGateway(gw: Gateway, host: string, port: number): Promise<string> {
  try {
    return await gw.app.listen({ host, port });
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new LoomError('NETWORK', `cannot listen on ${host}:${port}: ${code ?? (e as Error).message}`, {
      hint:
        code === 'EADDRINUSE'
          ? 'the port is taken (another stand-in or server?): pick another --port / 端口已被占用，请换一个 --port'
          : undefined,
      cause: e,
    });
  }
}

/**
 * Serves any ChatModel through the `loom serve` gateway (OpenAI wire format, errors, metrics): the in-process
 * endpoint evaluation and the examples use.
 */
export async function serveChatModel(
  model: ChatModel,
  opts: ServeOptions & Partial<Pick<GatewayOptions, 'limits'>> = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const gw = buildGateway({ models: [new ChatModelBackend(opts.modelName ?? model.id, model)], limits: opts.limits });
  const url = await listenGateway(gw, opts.host ?? '127.0.0.1', opts.port ?? 0);
  return { app: gw.app, url: `${url}/v1` };
}
