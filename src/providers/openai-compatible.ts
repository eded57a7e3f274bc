import { LoomError } from '../core/errors.ts';
import type { ChatModel, ChatResult, GenerationSettings, Message } from '../core/types.ts';
import { providerPresets } from './presets.ts';
import { readChatStream } from './sse.ts';

export interface EndpointOptions {
  /** Preset name (openai, dashscope, qianfan, deepseek, ollama, vllm) whose fields the others override. */
  provider?: string;
  baseURL?: string;
  model: string;
  apiKeyEnv?: string;
  /** Explicit key (tests, programmatic use); otherwise read from `apiKeyEnv`. */
  apiKey?: string;
  concurrency?: number;
  maxRetries?: number;
  timeoutMs?: number;
  /** First backoff delay; doubles each retry with jitter, capped at 30 s, and Retry-After wins when sent. */
  backoffMs?: number;
  extraBody?: Record<string, unknown>;
}

/** Counting semaphore so one endpoint never has more than N requests in flight. */
class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });

interface ChatCompletionResponse {
  choices?: { message?: { content?: string | null }; finish_reason?: string }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  error?: { message?: string };
}

/** A ChatModel over any OpenAI-compatible `/chat/completions` endpoint, with retries, timeouts and limits. */
export class OpenAICompatibleModel implements ChatModel {
  readonly id: string;
  private readonly url: string;
  private readonly key?: string;
  private readonly sem: Semaphore;
  private missingKeyEnv?: string;
  private readonly opts: Required<Pick<EndpointOptions, 'maxRetries' | 'timeoutMs' | 'backoffMs'>> & EndpointOptions;

  constructor(opts: EndpointOptions) {
    const preset = opts.provider ? providerPresets[opts.provider] : undefined;
    if (opts.provider && !preset) {
      throw new LoomError('PROVIDER', `unknown provider preset "${opts.provider}"`, {
        field: 'provider',
        hint: `use one of ${Object.keys(providerPresets).join(', ')}, or give base_url`,
      });
    }
    const baseURL = opts.baseURL ?? preset?.baseURL;
    if (!baseURL) {
      throw new LoomError('PROVIDER', `model "${opts.model}" has neither a provider preset nor a base_url`, {
        field: 'base_url',
      });
    }
    const keyEnv = opts.apiKeyEnv ?? preset?.apiKeyEnv;
    this.key = opts.apiKey ?? (keyEnv ? process.env[keyEnv] : undefined);
    this.url = `${baseURL.replace(/\/+$/, '')}/chat/completions`;
    this.id = `${opts.provider ?? 'endpoint'}:${opts.model}`;
    this.sem = new Semaphore(opts.concurrency ?? preset?.concurrency ?? 4);
    this.opts = { maxRetries: 4, timeoutMs: 60_000, backoffMs: 500, ...opts };
    // Deferred: the error is raised on first use so listing or dry-running a suite still works.
    if (keyEnv && !this.key && preset?.keyRequired && opts.baseURL === undefined) this.missingKeyEnv = keyEnv;
  }

  async chat(messages: Message[], settings: GenerationSettings = {}, signal?: AbortSignal): Promise<ChatResult> {
    return this.complete(messages, settings, { signal });
  }

  /**
   * chat() with request extras: `onText` streams the reply (`stream: true`, deltas passed on as they arrive);
   * `extraBody` adds fields (e.g. response_format). Retries and the semaphore apply as for chat(); a stream that
   * failed after text was passed on is never retried.
   */
  async complete(
    messages: Message[],
    settings: GenerationSettings,
    o: { signal?: AbortSignal; onText?: (delta: string) => void; extraBody?: Record<string, unknown> },
  ): Promise<ChatResult> {
    const signal = o.signal;
    if (this.missingKeyEnv) {
      throw new LoomError('PROVIDER', `${this.id}: environment variable ${this.missingKeyEnv} is not set`, {
        hint: `export ${this.missingKeyEnv}=<your key>`,
      });
    }
    const body = {
      model: this.opts.model,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      max_tokens: settings.maxNewTokens,
      temperature: settings.temperature,
      top_p: settings.topP,
      presence_penalty: settings.presencePenalty,
      frequency_penalty: settings.frequencyPenalty,
      seed: settings.seed,
      stop: settings.stop?.length ? settings.stop : undefined,
      ...this.opts.extraBody,
      ...o.extraBody,
      ...(o.onText ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
    await this.sem.acquire();
    try {
      return await this.withRetries(body, signal, o.onText);
    } finally {
      this.sem.release();
    }
  }

  private async withRetries(
    body: unknown,
    signal?: AbortSignal,
    onText?: (delta: string) => void,
  ): Promise<ChatResult> {
    let lastError = '';
    // True while the latest attempt got no HTTP answer at all (refused, unresolvable, reset, timed out).
    let noAnswer = false;
    // Per request, not per model: concurrent requests each honour the Retry-After their own reply sent.
    let retryAfterMs: number | undefined;
    for (let attempt = 0; attempt <= this.opts.maxRetries; attempt++) {
      if (attempt > 0) {
        await sleep(retryAfterMs ?? this.backoff(attempt), signal);
        retryAfterMs = undefined;
      }
      let res: Response;
      try {
        const timeout = AbortSignal.timeout(this.opts.timeoutMs);
        res = await fetch(this.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(this.key ? { authorization: `Bearer ${this.key}` } : {}),
          },
          body: JSON.stringify(body),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
      } catch (e) {
        if (signal?.aborted) throw e;
        const err = e as Error;
        lastError = err.name === 'TimeoutError' ? `timed out after ${this.opts.timeoutMs} ms` : describeFetchError(err);
        noAnswer = true;
        continue;
      }
      noAnswer = false;
      if (onText && res.ok) {
        try {
          return await readChatStream(this.id, res, onText);
        } catch (e) {
          if (signal?.aborted) throw e;
          if ((e as Error).name === 'TimeoutError')
            throw new LoomError('NETWORK', `${this.id}: stream exceeded the ${this.opts.timeoutMs} ms timeout`);
          throw e;
        }
      }
      const text = await res.text();
      if (res.status === 429 || res.status >= 500) {
        lastError = `HTTP ${res.status}: ${text.slice(0, 200)}`;
        retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
        continue;
      }
      if (!res.ok) {
        throw new LoomError('PROVIDER', `${this.id}: HTTP ${res.status} from ${this.url}: ${text.slice(0, 300)}`, {
          hint: res.status === 401 ? 'check the API key' : 'check the model name and request settings',
        });
      }
      let json: ChatCompletionResponse;
      try {
        json = JSON.parse(text) as ChatCompletionResponse;
      } catch {
        throw new LoomError('PROVIDER', `${this.id}: response is not JSON: ${text.slice(0, 200)}`);
      }
      const choice = json.choices?.[0];
      if (!choice) throw new LoomError('PROVIDER', `${this.id}: response has no choices: ${text.slice(0, 200)}`);
      return {
        text: choice.message?.content ?? '',
        usage: { promptTokens: json.usage?.prompt_tokens ?? 0, completionTokens: json.usage?.completion_tokens ?? 0 },
        finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
      };
    }
    throw new LoomError(
      'NETWORK',
      `${this.id}: ${this.url} failed after ${this.opts.maxRetries + 1} attempts: ${lastError}`,
      {
        // field base_url marks "never answered" (vs. 429/5xx after retries), so callers can tell an unreachable server.
        field: noAnswer ? 'base_url' : undefined,
        hint: 'check that the endpoint is reachable (base_url) and not rate-limiting; raise max_retries or timeout',
      },
    );
  }

  /**
   * One health probe before a suite: `GET <base_url>/models`, `attempts` tries `delayMs` apart, each bounded by
   * `timeoutMs`. Any HTTP answer (even 404 or 401) means the server is there; only a connection failure or a
   * timeout means unreachable, so servers without /models still pass. Returns the reason when unreachable.
   */
  async probe(opts: { attempts?: number; timeoutMs?: number; delayMs?: number } = {}): Promise<string | undefined> {
    const attempts = opts.attempts ?? 2;
    const timeoutMs = Math.min(opts.timeoutMs ?? 5_000, this.opts.timeoutMs);
    const url = this.url.replace(/\/chat\/completions$/, '/models');
    let reason = '';
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(opts.delayMs ?? 300);
      try {
        const res = await fetch(url, {
          headers: this.key ? { authorization: `Bearer ${this.key}` } : {},
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.body?.cancel();
        return undefined;
      } catch (e) {
        const err = e as Error;
        reason = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : describeFetchError(err);
      }
    }
    return `${url}: ${reason} (${attempts} ${attempts === 1 ? 'try' : 'tries'})`;
  }

  private backoff(attempt: number): number {
    const base = Math.min(30_000, this.opts.backoffMs * 2 ** (attempt - 1));
    return base / 2 + Math.random() * (base / 2);
  }
}

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3), capped at a minute; undefined when absent or bad. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  const ms = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), 60_000);
}

function describeFetchError(e: Error): string {
  const cause = (e as Error & { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code} ${cause.message ?? ''}`.trim();
  return cause?.message ? `${e.message}: ${cause.message}` : e.message;
}
