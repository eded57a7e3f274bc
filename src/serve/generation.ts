/**
 * One generation request end to end: slot from the limiter (429 when full), abort on client disconnect or
 * per-request timeout, fallback chain for upstreams, and the TTFT / inter-token / token metrics.
 */
import { isLoomError } from '../core/errors.ts';
import type { ChatResult } from '../core/types.ts';
import type { ServeMetrics } from '../monitor/metrics.ts';
import type { GenerateRequest, ServedModel } from './backends.ts';
import { ApiError } from './protocol.ts';

export interface RunOptions {
  models: ReadonlyMap<string, ServedModel>;
  metrics: ServeMetrics;
  timeoutMs: number;
  /** Aborted when the client goes away. */
  disconnect: AbortSignal;
  /** Called once a slot is held and generation starts (streams send their headers then, not before a 429). */
  onStart?: () => void;
}

export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (isLoomError(e) && (e.code === 'PROVIDER' || e.code === 'NETWORK')) {
    return new ApiError(502, `upstream failed: ${e.message}`, 'upstream_error', null, 'upstream_error');
  }
  if (isLoomError(e)) return new ApiError(500, e.message, 'server_error', e.field ?? null, e.code.toLowerCase());
  return new ApiError(500, 'internal server error', 'server_error', null, 'internal_error');
}

async function once(model: ServedModel, req: GenerateRequest, o: RunOptions, started: number): Promise<ChatResult> {
  const release = model.limiter ? await model.limiter.acquire(req.signal) : () => {};
  o.onStart?.();
  let last = 0;
  const onText = (d: string) => {
    if (!d) return;
    const now = performance.now();
    if (last === 0) o.metrics.ttft.observe({ model: model.name }, (now - started) / 1000);
    else o.metrics.itl.observe({ model: model.name }, (now - last) / 1000);
    last = now;
    req.onText?.(d);
  };
  try {
    const r = await model.generate({ ...req, onText });
    o.metrics.tokens.inc({ direction: 'in', model: model.name }, r.usage.promptTokens);
    o.metrics.tokens.inc({ direction: 'out', model: model.name }, r.usage.completionTokens);
    return r;
  } finally {
    release();
  }
}

/** Runs a request on `model`, then on each fallback in order when an upstream fails (never after text went out). */
export async function runGeneration(
  model: ServedModel,
  req: Omit<GenerateRequest, 'signal'>,
  o: RunOptions,
): Promise<ChatResult> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = AbortSignal.any([o.disconnect, timeout]);
  const started = performance.now();
  let sent = false;
  const full: GenerateRequest = {
    ...req,
    signal,
    onText: (d) => {
      sent = true;
      req.onText?.(d);
    },
  };
  const chain = [model, ...model.fallback.map((n) => o.models.get(n)).filter((m): m is ServedModel => !!m)];
  let err: unknown;
  for (const m of chain) {
    try {
      const r = await once(m, full, o, started);
      if (timeout.aborted) {
        throw timeoutError(o.timeoutMs);
      }
      if (o.disconnect.aborted)
        throw new ApiError(499, 'client closed the request', 'client_closed', null, 'client_closed');
      if (r.finishReason === 'error')
        throw new ApiError(500, 'generation failed', 'server_error', null, 'generation_failed');
      return r;
    } catch (e) {
      if (timeout.aborted && !(e instanceof ApiError && e.status === 504)) {
        throw timeoutError(o.timeoutMs);
      }
      if (e instanceof ApiError || sent || signal.aborted) throw e;
      err = e;
    }
  }
  throw err;
}

function timeoutError(ms: number): ApiError {
  return new ApiError(504, `generation exceeded the ${ms} ms request timeout`, 'timeout_error', null, 'timeout');
}
