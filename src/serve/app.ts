/**
 * The `loom serve` HTTP surface (fastify): /v1/chat/completions, /v1/completions (SSE or JSON), /v1/models,
 * /health, /ready, /metrics. Every failure answers the OpenAI error envelope with a fitting status; nothing a
 * client sends can take the process down.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import pino from 'pino';
import type { GuardConfigInput } from '../config/guard.ts';
import type { ChatResult } from '../core/types.ts';
import { ServeMetrics } from '../monitor/metrics.ts';
import type { RequestLogEntry } from '../registry/request-log.ts';
import type { ServedModel } from './backends.ts';
import { runGeneration, toApiError } from './generation.ts';
import { type GuardedStream, promptTextOf, ServeGuard } from './guard-middleware.ts';
import { completionLogprobs, type TokenLogprob } from './logprobs.ts';
import {
  ApiError,
  type CompletionBody,
  chatBody,
  chatExtras,
  completionBody,
  completionExtras,
  invalid,
  parseBody,
  toMessages,
  toSettings,
} from './protocol.ts';

export interface ServeLimits {
  max_body_bytes: number;
  max_tokens: number;
  default_max_tokens: number;
  timeout_ms: number;
  rss_watermark_mb: number;
}

const DEFAULT_LIMITS: ServeLimits = {
  max_body_bytes: 1_048_576,
  max_tokens: 1024,
  default_max_tokens: 256,
  timeout_ms: 120_000,
  rss_watermark_mb: 0,
};

export interface GatewayOptions {
  models: ServedModel[];
  limits?: Partial<ServeLimits>;
  /** pino level; 'silent' for tests and in-process stand-ins. */
  logLevel?: string;
  /** Checked before every generation; throws an ApiError (401/403/429) to refuse. */
  authorize?: (req: FastifyRequest, model: string) => void;
  /** Filters /v1/models to what the caller may use; throws an ApiError (401) without a valid key. */
  visibleModels?: (req: FastifyRequest, all: string[]) => string[];
  /** Told the usage of every finished generation (key budgets). */
  onUsage?: (req: FastifyRequest, r: ChatResult) => void;
  /** Told every finished generation (after the reply went out): the request log. */
  onLog?: (e: RequestLogEntry) => void;
  /** serve.yaml `guard:`; absent = requests and replies pass unguarded. */
  guard?: GuardConfigInput;
}

export interface Gateway {
  app: FastifyInstance;
  metrics: ServeMetrics;
  models: Map<string, ServedModel>;
  /** Mark not-ready (load balancers stop sending) and wait for in-flight streams to finish. */
  drain(): Promise<void>;
}

const counted = new WeakSet<FastifyRequest>();
const modelOf = new WeakMap<FastifyRequest, string>();

/** Splits `base:adapter`; the adapter part is a lookup key, never a path. */
function resolveModel(models: Map<string, ServedModel>, id: string): { model: ServedModel; adapter?: string } {
  const direct = models.get(id);
  if (direct) return { model: direct };
  const i = id.indexOf(':');
  const base = i > 0 ? models.get(id.slice(0, i)) : undefined;
  if (base?.adapters.includes(id.slice(i + 1))) return { model: base, adapter: id.slice(i + 1) };
  throw new ApiError(
    404,
    `The model \`${id.slice(0, 200)}\` does not exist`,
    'invalid_request_error',
    'model',
    'model_not_found',
  );
}

export function buildGateway(opts: GatewayOptions): Gateway {
  const limits: ServeLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const metrics = new ServeMetrics();
  const models = new Map(opts.models.map((m) => [m.name, m]));
  for (const m of opts.models) {
    metrics.queueDepth.set({ model: m.name }, 0);
    metrics.running.set({ model: m.name }, 0);
  }
  const guard = opts.guard ? new ServeGuard(opts.guard, [...models.keys()], metrics) : undefined;
  let draining = false;
  const app = Fastify({
    loggerInstance: pino(
      { level: opts.logLevel ?? 'silent', base: { svc: 'loom-serve' } },
      pino.destination(2),
    ) as FastifyBaseLogger,
    bodyLimit: limits.max_body_bytes,
    genReqId: () => randomUUID(),
  });

  const record = (req: FastifyRequest, status: number) => {
    if (counted.has(req)) return;
    counted.add(req);
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, model: modelOf.get(req) ?? '', status: String(status) });
    metrics.latency.observe({ route }, reply_elapsed(req));
  };
  const t0 = new WeakMap<FastifyRequest, number>();
  const reply_elapsed = (req: FastifyRequest) => (performance.now() - (t0.get(req) ?? performance.now())) / 1000;
  app.addHook('onRequest', async (req) => {
    t0.set(req, performance.now());
  });
  app.addHook('onResponse', async (req, reply) => record(req, reply.statusCode));

  app.setErrorHandler((err, req, reply) => {
    const e = fromFastify(err);
    if (e.status >= 500) req.log.error({ err }, 'request failed');
    if (e.retryAfter !== undefined) reply.header('retry-after', String(e.retryAfter));
    return reply.code(e.status).send(e.body());
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send(
        new ApiError(
          404,
          `no route ${req.method} ${req.url.slice(0, 200)}`,
          'invalid_request_error',
          null,
          'not_found',
        ).body(),
      ),
  );

  const memoryGuard = () => {
    if (limits.rss_watermark_mb > 0 && process.memoryUsage.rss() > limits.rss_watermark_mb * 1048576) {
      metrics.shed.inc({ reason: 'memory' });
      throw new ApiError(503, 'server is low on memory: retry later', 'server_error', null, 'overloaded', 5);
    }
  };

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) =>
    draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ready', models: [...models.keys()] },
  );
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.text()));
  app.get('/v1/models', async (req) => {
    const all = opts.models.flatMap((m) => [m.name, ...m.adapters.map((a) => `${m.name}:${a}`)]);
    const ids = opts.visibleModels ? opts.visibleModels(req, all) : all;
    return { object: 'list', data: ids.map((id) => ({ id, object: 'model', created: 0, owned_by: 'loom' })) };
  });

  const generate = async (kind: 'chat' | 'text', req: FastifyRequest, reply: FastifyReply) => {
    const chat = kind === 'chat' ? parseBody(chatBody, req.body) : undefined;
    const body = chat ?? parseBody(completionBody, req.body);
    // Only configured names become metric labels: arbitrary client strings would grow the series without bound.
    modelOf.set(req, 'unknown');
    const { model, adapter } = resolveModel(models, body.model);
    modelOf.set(req, model.name);
    opts.authorize?.(req, model.name);
    let maxTokens = body.max_tokens ?? limits.default_max_tokens;
    const extras = chat ? chatExtras(chat) : completionExtras(body as CompletionBody);
    if (chat) maxTokens = chat.max_completion_tokens ?? maxTokens;
    if (maxTokens > limits.max_tokens) {
      throw invalid(
        `max_tokens ${maxTokens} is above this server's limit of ${limits.max_tokens}`,
        body.max_tokens ? 'max_tokens' : 'max_completion_tokens',
        'max_tokens_exceeded',
      );
    }
    const settings = toSettings(body, maxTokens);
    memoryGuard();
    let messages = chat ? toMessages(chat) : undefined;
    let prompt = kind === 'text' ? [(body as { prompt: string | string[] }).prompt].flat()[0] : undefined;
    const userText = promptTextOf(messages, prompt);
    const asked = { messages, prompt };
    const logged = (status: number, reply: string, r?: ChatResult, guardOutput?: string) => {
      const onLog = opts.onLog;
      if (!onLog) return;
      const e: RequestLogEntry = {
        requestId: req.id,
        model: model.name,
        route: kind,
        status,
        ...asked,
        reply,
        promptTokens: r?.usage.promptTokens,
        completionTokens: r?.usage.completionTokens,
        latencyMs: reply_elapsed(req) * 1000,
        guardInput: verdict?.verdict.action,
        guardOutput,
      };
      // Off the response path: redaction and the SQLite write never add to a client's latency.
      setImmediate(() => {
        try {
          onLog(e);
        } catch (err) {
          req.log.error({ err }, 'request log write failed');
        }
      });
    };
    const verdict = guard?.input(model.name, messages, prompt);
    if (verdict) ({ messages, prompt } = verdict);
    const disconnect = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) disconnect.abort(new Error('client disconnected'));
    });
    // A refused reply stops generating at once: nothing more of it will be sent.
    const guardStop = new AbortController();
    const moderated: GuardedStream | undefined = body.stream ? guard?.stream(model.name, userText) : undefined;
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = (r: ChatResult) => ({
      prompt_tokens: r.usage.promptTokens,
      completion_tokens: r.usage.completionTokens,
      total_tokens: r.usage.promptTokens + r.usage.completionTokens,
    });
    const finish = (r: ChatResult) => (r.finishReason === 'length' ? 'length' : 'stop');
    const run = {
      models,
      metrics,
      timeoutMs: limits.timeout_ms,
      disconnect: AbortSignal.any([disconnect.signal, guardStop.signal]),
    };
    if (verdict?.refusal !== undefined) reply.header('x-loom-guard', 'input-refused');
    // logprobs: entries arrive per token ahead of their text; each chunk carries those not sent yet.
    const pendingLp: TokenLogprob[] = [];
    let lpOffset = 0;
    const onLogprob = extras.logprobs === undefined ? undefined : (e: TokenLogprob) => pendingLp.push(e);
    const takeLogprobs = () => {
      if (!onLogprob) return null;
      const es = pendingLp.splice(0);
      if (kind === 'chat') return { content: es, refusal: null };
      const out = completionLogprobs(es, lpOffset);
      for (const e of es) lpOffset += e.token.length;
      return out;
    };

    if (!body.stream) {
      // Refused input: an ordinary-looking completion whose text is the refusal (what a shop bot shows the
      // customer), also in `refusal` and marked finish_reason content_filter so programs can tell.
      const refusedInput = verdict?.refusal;
      const r: ChatResult = refusedInput
        ? { text: refusedInput, finishReason: 'stop', usage: { promptTokens: 0, completionTokens: 0 } }
        : await runGeneration(model, { messages, prompt, settings, adapter, ...extras, onLogprob }, run);
      if (!refusedInput) opts.onUsage?.(req, r);
      const out = refusedInput ? { text: r.text, refused: true } : guard?.output(model.name, r.text, userText);
      if (out?.refused && !refusedInput) reply.header('x-loom-guard', 'output-refused');
      const text = out?.text ?? r.text;
      const reason = out?.refused ? 'content_filter' : finish(r);
      logged(
        200,
        text,
        refusedInput ? undefined : r,
        refusedInput ? undefined : out && 'verdict' in out ? out.verdict.action : undefined,
      );
      const choice =
        kind === 'chat'
          ? {
              index: 0,
              message: { role: 'assistant', content: text, refusal: out?.refused ? text : null },
              logprobs: out?.refused ? null : takeLogprobs(),
              finish_reason: reason,
            }
          : { index: 0, text, logprobs: out?.refused ? null : takeLogprobs(), finish_reason: reason };
      return {
        id,
        object: kind === 'chat' ? 'chat.completion' : 'text_completion',
        created,
        model: body.model,
        choices: [choice],
        usage: usage(r),
      };
    }

    // SSE: headers go out once a slot is held, so a full queue still answers a plain 429.
    const raw = reply.raw;
    const send = (o: unknown) => {
      if (!raw.destroyed) raw.write(`data: ${JSON.stringify(o)}\n\n`);
    };
    const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const chunk = (delta: string | null, finishReason: string | null, first = false) => ({
      id,
      object,
      created,
      model: body.model,
      choices: [
        kind === 'chat'
          ? {
              index: 0,
              delta: first ? { role: 'assistant', content: '' } : delta === null ? {} : { content: delta },
              logprobs: delta === null || first ? null : takeLogprobs(),
              finish_reason: finishReason,
            }
          : {
              index: 0,
              text: delta ?? '',
              logprobs: delta === null ? null : takeLogprobs(),
              finish_reason: finishReason,
            },
      ],
    });
    let open = false;
    const onStart = () => {
      if (open) return;
      open = true;
      reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-request-id': req.id,
      });
      if (kind === 'chat') send(chunk(null, null, true));
    };
    let streamedText = '';
    const emit = (d: string) => {
      if (!moderated) {
        streamedText += d;
        return send(chunk(d, null));
      }
      const out = moderated.push(d);
      streamedText += out;
      if (out) send(chunk(out, null));
      if (moderated.blocked) guardStop.abort(new Error('reply refused by the guard'));
    };
    const usageChunk = (r: ChatResult) => {
      if (body.stream_options?.include_usage)
        send({ id, object, created, model: body.model, choices: [], usage: usage(r) });
    };
    if (verdict?.refusal !== undefined) {
      onStart();
      send(chunk(verdict.refusal, null));
      send(chunk(null, 'content_filter'));
      usageChunk({ text: '', finishReason: 'stop', usage: { promptTokens: 0, completionTokens: 0 } });
      if (!raw.destroyed) raw.end('data: [DONE]\n\n');
      record(req, 200);
      logged(200, verdict.refusal);
      return reply;
    }
    try {
      const r = await runGeneration(
        model,
        { messages, prompt, settings, adapter, ...extras, onLogprob, onText: emit },
        { ...run, onStart },
      );
      opts.onUsage?.(req, r);
      const rest = moderated?.end();
      if (rest) send(chunk(rest, null));
      streamedText += rest ?? '';
      logged(200, moderated ? streamedText : r.text, r, moderated?.verdict?.action);
      send(chunk(null, moderated?.blocked ? 'content_filter' : finish(r)));
      usageChunk(r);
      if (!raw.destroyed) raw.end('data: [DONE]\n\n');
      record(req, 200);
    } catch (e) {
      if (open && moderated?.blocked && !disconnect.signal.aborted) {
        // Stopped by the guard mid-reply: the refusal went out through emit; close the stream normally.
        // The backend was aborted, so no usage figure exists for this reply.
        send(chunk(null, 'content_filter'));
        if (!raw.destroyed) raw.end('data: [DONE]\n\n');
        record(req, 200);
        logged(200, streamedText, undefined, 'block');
        return reply;
      }
      if (!open) throw e;
      // Headers are out: the error travels as an SSE event the SDKs raise, then the stream closes.
      const err = toApiError(e);
      if (err.status >= 500 && !disconnect.signal.aborted) req.log.error({ err: e }, 'stream failed');
      send(err.body());
      if (!raw.destroyed) raw.end();
      record(req, disconnect.signal.aborted ? 499 : err.status);
      logged(disconnect.signal.aborted ? 499 : err.status, streamedText);
    }
    return reply;
  };

  app.post('/v1/chat/completions', (req, reply) => generate('chat', req, reply));
  app.post('/v1/completions', (req, reply) => generate('text', req, reply));

  return {
    app,
    metrics,
    models,
    drain: async () => {
      draining = true;
      await app.close();
    },
  };
}

/** Fastify's own errors (bad JSON, body too large, wrong media type) in the OpenAI envelope. */
function fromFastify(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new ApiError(413, 'request body is too large', 'invalid_request_error', null, 'body_too_large');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type' : 'invalid_json';
    return new ApiError(
      e.statusCode,
      `${e.message ?? 'bad request'}`.slice(0, 300),
      'invalid_request_error',
      null,
      code,
    );
  }
  return toApiError(err);
}
