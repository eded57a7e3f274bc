/**
 * `backend: gguf`: a GGUF file served through llama.cpp (node-llama-cpp@3.21.1, its prebuilt CPU binary).
 * Chat uses the chat template in the file's header (node-llama-cpp resolves it to a chat wrapper); completions
 * feed the raw prompt. Each request gets its own context sequence (the context holds `concurrency` of them), so
 * nothing of one conversation leaks into the next. response_format json_object / json_schema run through
 * llama.cpp's own grammar sampler, so the output is valid JSON by construction.
 *
 * node-llama-cpp is an optional dependency, imported only when a gguf model is configured: a server with only
 * local/upstream models never loads the native addon.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type {
  ChatHistoryItem,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
  Token,
} from 'node-llama-cpp';
import type { ServeModelConfig } from '../config/serve.ts';
import { LoomError } from '../core/errors.ts';
import type { ChatResult, Message } from '../core/types.ts';
import type { GenerateRequest, ServedModel } from './backends.ts';
import { refuseUnsupported } from './capabilities.ts';
import type { Limiter } from './limiter.ts';
import { ApiError } from './protocol.ts';

type NodeLlamaCpp = typeof import('node-llama-cpp');

let runtime: Promise<{ mod: NodeLlamaCpp; llama: Llama }> | undefined;

/** One llama.cpp runtime per process, shared by every gguf model (loading it takes seconds). */
function llamaRuntime(): Promise<{ mod: NodeLlamaCpp; llama: Llama }> {
  runtime ??= (async () => {
    let mod: NodeLlamaCpp;
    try {
      mod = await import('node-llama-cpp');
    } catch (e) {
      runtime = undefined;
      throw new LoomError('RUNTIME', `the gguf backend needs node-llama-cpp: ${(e as Error).message}`, {
        field: 'backend',
        hint: 'npm install node-llama-cpp@3.21.1 (an optional dependency of loom), or serve the model folder with backend: local / gguf 后端需要安装 node-llama-cpp@3.21.1',
      });
    }
    const llama = await mod.getLlama({
      gpu: false,
      build: 'never',
      progressLogs: false,
      logLevel: mod.LlamaLogLevel.error,
    });
    return { mod, llama };
  })();
  return runtime;
}

function toHistory(messages: readonly Message[]): ChatHistoryItem[] {
  const h: ChatHistoryItem[] = [];
  for (const m of messages) {
    if (m.role === 'system') h.push({ type: 'system', text: m.content });
    else if (m.role === 'assistant') h.push({ type: 'model', response: [m.content] });
    // Tool results have no slot in a plain chat template: they reach the model as a user turn saying so.
    else h.push({ type: 'user', text: m.role === 'tool' ? `Tool result:\n${m.content}` : m.content });
  }
  // The reply slot the model completes.
  h.push({ type: 'model', response: [] });
  return h;
}

export class GgufBackend implements ServedModel {
  readonly backend = 'gguf' as const;
  readonly adapters: string[] = [];
  readonly fallback: string[] = [];
  private jsonGrammar?: Promise<LlamaGrammar>;

  private constructor(
    readonly name: string,
    private readonly mod: NodeLlamaCpp,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    readonly limiter: Limiter,
  ) {}

  static async open(
    cfg: Extract<ServeModelConfig, { backend: 'gguf' }>,
    baseDir: string,
    limiter: Limiter,
  ): Promise<GgufBackend> {
    const path = isAbsolute(cfg.path) ? cfg.path : resolve(baseDir, cfg.path);
    if (!existsSync(path)) {
      throw new LoomError('INPUT_NOT_FOUND', `model "${cfg.name}": GGUF file ${path} does not exist`, {
        field: 'path',
        hint: 'make one with `loom export <model-dir> --format gguf`, or fix the path (relative to serve.yaml)',
      });
    }
    const { mod, llama } = await llamaRuntime();
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    } catch (e) {
      throw new LoomError(
        'MODEL_INVALID',
        `model "${cfg.name}": llama.cpp could not load ${path}: ${(e as Error).message}`,
        {
          file: path,
          hint: 'check that the file is a complete GGUF (re-export it with `loom export --format gguf`)',
        },
      );
    }
    const context = await model.createContext({
      contextSize: cfg.context_size ?? { max: 4096 },
      sequences: limiter.concurrency,
      threads: cfg.threads,
    });
    return new GgufBackend(cfg.name, mod, llama, model, context, limiter);
  }

  private async grammarFor(req: GenerateRequest): Promise<LlamaGrammar | undefined> {
    const f = req.responseFormat;
    if (!f) return undefined;
    if (f.type === 'json_object') {
      this.jsonGrammar ??= this.llama.getGrammarFor('json');
      return this.jsonGrammar;
    }
    try {
      return await this.llama.createGrammarForJsonSchema(
        f.schema as Parameters<Llama['createGrammarForJsonSchema']>[0],
      );
    } catch (e) {
      throw new ApiError(
        400,
        `response_format.json_schema.schema: ${(e as Error).message}`.slice(0, 400),
        'invalid_request_error',
        'response_format',
        'invalid_value',
      );
    }
  }

  async generate(req: GenerateRequest): Promise<ChatResult> {
    refuseUnsupported(`model "${this.name}" (gguf)`, req, { json_object: true, json_schema: true });
    const grammar = await this.grammarFor(req);
    const s = req.settings;
    let sequence: LlamaContextSequence;
    try {
      sequence = this.context.getSequence();
    } catch {
      // The limiter hands out at most `concurrency` slots and the context holds as many sequences.
      throw new ApiError(503, 'no free llama.cpp sequence, retry later', 'server_error', null, 'overloaded', 1);
    }
    let completion = 0;
    const common = {
      maxTokens: s.maxNewTokens,
      temperature: s.temperature ?? 0,
      topP: s.topP,
      topK: s.topK,
      minP: s.minP,
      seed: s.seed,
      customStopTriggers: s.stop?.length ? s.stop : undefined,
      repeatPenalty:
        s.presencePenalty || s.frequencyPenalty
          ? { presencePenalty: s.presencePenalty ?? 0, frequencyPenalty: s.frequencyPenalty ?? 0 }
          : (false as const),
      grammar,
      signal: req.signal,
      stopOnAbortSignal: true,
      onToken: (t: Token[]) => {
        completion += t.length;
      },
      onTextChunk: (d: string) => req.onText?.(d),
    };
    try {
      let text: string;
      let stopReason: string;
      if (req.messages) {
        const chat = new this.mod.LlamaChat({ contextSequence: sequence, autoDisposeSequence: false });
        try {
          const r = await chat.generateResponse(toHistory(req.messages), common);
          text = r.response;
          stopReason = r.metadata.stopReason;
        } finally {
          chat.dispose();
        }
      } else {
        const comp = new this.mod.LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
        try {
          const r = await comp.generateCompletionWithMeta(req.prompt ?? '', common);
          text = r.response;
          stopReason = r.metadata.stopReason;
        } finally {
          comp.dispose();
        }
      }
      return {
        text,
        usage: { promptTokens: sequence.tokenMeter.usedInputTokens, completionTokens: completion },
        finishReason: stopReason === 'maxTokens' ? 'length' : stopReason === 'abort' ? 'error' : 'stop',
      };
    } finally {
      sequence.dispose();
    }
  }

  async close(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
