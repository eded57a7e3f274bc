/**
 * Bearer-key checks for the gateway: 401 for a missing/unknown key, 403 outside the key's model scope,
 * 429 over its requests-per-minute or token budget. Rate windows live in memory (per process).
 */
import type { FastifyRequest } from 'fastify';
import type { ChatResult } from '../core/types.ts';
import type { ApiKeyRecord, ApiKeys } from '../registry/keys.ts';
import { ApiError } from './protocol.ts';

export function keyAuth(keys: ApiKeys): {
  authorize: (req: FastifyRequest, model: string) => void;
  visibleModels: (req: FastifyRequest, all: string[]) => string[];
  onUsage: (req: FastifyRequest, r: ChatResult) => void;
} {
  const who = new WeakMap<FastifyRequest, ApiKeyRecord>();
  const windows = new Map<string, number[]>();
  const identify = (req: FastifyRequest): ApiKeyRecord => {
    const h = req.headers.authorization ?? '';
    const key = h.startsWith('Bearer ') ? h.slice(7).trim() : '';
    const rec = key ? keys.verify(key) : undefined;
    if (!rec)
      throw new ApiError(
        401,
        'Incorrect or missing API key (send Authorization: Bearer <key>)',
        'invalid_request_error',
        null,
        'invalid_api_key',
      );
    return rec;
  };
  const allowed = (rec: ApiKeyRecord, model: string) => rec.models.length === 0 || rec.models.includes(model);
  return {
    // /v1/models needs a key like OpenAI's does, and lists only what that key may call: on a public bind the
    // model names (and adapter names, often customer names) are not for anonymous callers.
    visibleModels(req, all) {
      const rec = identify(req);
      return all.filter((id) => allowed(rec, id.split(':')[0]!));
    },
    authorize(req, model) {
      const rec = identify(req);
      if (!allowed(rec, model)) {
        throw new ApiError(
          403,
          `this API key may not use model "${model}"`,
          'invalid_request_error',
          'model',
          'model_not_allowed',
        );
      }
      if (rec.tokenBudget !== undefined && rec.tokensUsed >= rec.tokenBudget) {
        throw new ApiError(
          429,
          'this API key has used its token budget',
          'insufficient_quota',
          null,
          'insufficient_quota',
        );
      }
      if (rec.rpm !== undefined) {
        const now = Date.now();
        const w = (windows.get(rec.id) ?? []).filter((t) => now - t < 60_000);
        if (w.length >= rec.rpm) {
          const wait = Math.max(1, Math.ceil((60_000 - (now - w[0]!)) / 1000));
          throw new ApiError(
            429,
            `rate limit of ${rec.rpm} requests per minute reached`,
            'rate_limit_error',
            null,
            'rate_limit_exceeded',
            wait,
          );
        }
        w.push(now);
        windows.set(rec.id, w);
      }
      who.set(req, rec);
    },
    onUsage(req, r) {
      const rec = who.get(req);
      if (rec) keys.addTokens(rec.id, r.usage.promptTokens + r.usage.completionTokens);
    },
  };
}
