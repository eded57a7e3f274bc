/**
 * LocalChatModel: a model folder (weights + tokenizer + chat template) behind the ChatModel interface that
 * evaluation and serving use.
 *
 * API:
 *   LocalChatModel.fromFolder(dir, { engine?, threads?, template?, id?, file? })   a model folder or an ONNX export
 *                                                               folder (runs its onnx/ file; CausalLM.load)
 *   LocalChatModel.fromWeights({ config, weights, tokenizerDir, generationConfig }, opts)
 *   model.chat(messages, settings?, signal?)                    -> ChatResult
 *   model.chatStream(messages, settings, onText, signal?)       -> ChatResult (onText gets each final text piece;
 *                                                                  settings.hook constrains/observes token choices)
 *   model.chatBatch(conversations, settings?)                   -> ChatResult[] (one left-padded batch)
 *   model.logLikelihood(prompt, continuations)                  -> number[]
 *   model.close()
 * Settings fall back to generation_config.json (settingsFromGenerationConfig: do_sample false or absent -> greedy),
 * then to greedy with max_new_tokens 256. The chat template is the model's own unless `template` names a built-in one.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.ts';
import type { ChatModel, ChatResult, GenerationSettings, Message } from '../core/types.ts';
import type { Engine } from '../engine/index.ts';
import type { LlamaConfig } from '../models/config.ts';
import { openModelFolder } from '../models/folder.ts';
import type { Float32Tensor } from '../models/safetensors.ts';
import { applyChatTemplate } from '../tokenizer/chat.ts';
import { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import { CausalLM, isOnnxExport } from './causal-lm.ts';
import { DEFAULT_MAX_NEW_TOKENS, generateText, type IdsRunner, type TextResult } from './generate.ts';
import { settingsFromGenerationConfig, type TokenHook } from './sampling.ts';
import { continuationLogLikelihoods } from './score.ts';

export interface LocalChatModelOptions {
  engine?: Engine;
  threads?: number;
  /** 'auto' (model's own, else chatml), a built-in name, or jinja source. */
  template?: string;
  id?: string;
  /** ONNX export only: the onnx/ file to run (default: the export's own dtype). */
  file?: string;
}

export class LocalChatModel implements ChatModel {
  /** Where token generation runs (serve sets its continuous-batching scheduler); default one batch per call. */
  runIds?: IdsRunner;

  private constructor(
    readonly id: string,
    readonly lm: CausalLM,
    readonly tokenizer: LoomTokenizer,
    private readonly defaults: GenerationSettings,
    private readonly template: string | undefined,
  ) {}

  static async fromFolder(dir: string, opts: LocalChatModelOptions = {}): Promise<LocalChatModel> {
    const defaults = settingsFromGenerationConfig(generationConfigOf(dir));
    const tokenizer = LoomTokenizer.fromFolder(dir);
    const lm = await CausalLM.load(dir, { engine: opts.engine, threads: opts.threads, file: opts.file });
    return new LocalChatModel(opts.id ?? `local:${dir}`, lm, tokenizer, defaults, opts.template);
  }

  /** Weights already in memory (e.g. a training checkpoint applied to its base model), tokenizer from a folder. */
  static async fromWeights(
    src: {
      config: LlamaConfig;
      weights: Map<string, Float32Tensor>;
      tokenizerDir: string;
      generationConfig: Record<string, unknown>;
    },
    opts: LocalChatModelOptions = {},
  ): Promise<LocalChatModel> {
    const tokenizer = LoomTokenizer.fromFolder(src.tokenizerDir);
    const lm = await CausalLM.fromWeights(src.config, src.weights, { engine: opts.engine, threads: opts.threads });
    const defaults = settingsFromGenerationConfig(src.generationConfig);
    return new LocalChatModel(opts.id ?? `local:${src.tokenizerDir}`, lm, tokenizer, defaults, opts.template);
  }

  /** Prompt ids for a conversation, ending with the assistant generation prompt. */
  async encodePrompt(messages: readonly Message[]): Promise<number[]> {
    const text = applyChatTemplate(this.tokenizer, messages, { addGenerationPrompt: true, template: this.template });
    return this.tokenizer.encode(text, { addSpecialTokens: false });
  }

  private settings(s: GenerationSettings = {}): GenerationSettings {
    const merged: GenerationSettings = { ...this.defaults };
    for (const [k, v] of Object.entries(s)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
    merged.maxNewTokens ??= DEFAULT_MAX_NEW_TOKENS;
    return merged;
  }

  private static result(r: TextResult): ChatResult {
    return {
      text: r.text,
      usage: { promptTokens: r.promptTokens, completionTokens: r.ids.length + (r.finishReason === 'eos' ? 1 : 0) },
      finishReason: r.finishReason === 'length' ? 'length' : r.finishReason === 'aborted' ? 'error' : 'stop',
    };
  }

  async chat(messages: Message[], settings?: GenerationSettings, signal?: AbortSignal): Promise<ChatResult> {
    const [r] = await this.chatBatch([messages], settings, signal);
    return r as ChatResult;
  }

  async chatStream(
    messages: Message[],
    settings: (GenerationSettings & { hook?: TokenHook }) | undefined,
    onText: (delta: string) => void,
    signal?: AbortSignal,
  ): Promise<ChatResult> {
    const prompt = await this.encodePrompt(messages);
    const [r] = await generateText(this.lm, this.tokenizer, [prompt], {
      ...this.settings(settings),
      signal,
      runIds: this.runIds,
      onText: (_row, d) => onText(d),
    });
    return LocalChatModel.result(r as TextResult);
  }

  async chatBatch(
    conversations: readonly Message[][],
    settings?: GenerationSettings,
    signal?: AbortSignal,
  ): Promise<ChatResult[]> {
    const prompts = await Promise.all(conversations.map((m) => this.encodePrompt(m)));
    const rs = await generateText(this.lm, this.tokenizer, prompts, {
      ...this.settings(settings),
      signal,
      runIds: this.runIds,
    });
    return rs.map((r) => LocalChatModel.result(r));
  }

  async logLikelihood(prompt: Message[] | string, continuations: string[]): Promise<number[]> {
    const context =
      typeof prompt === 'string'
        ? prompt
        : applyChatTemplate(this.tokenizer, prompt, { addGenerationPrompt: true, template: this.template });
    const ctxIds = await this.tokenizer.encode(context, { addSpecialTokens: typeof prompt === 'string' });
    const conts: number[][] = [];
    for (const c of continuations) {
      // Tokenize context + continuation together when the context's tokens survive as a prefix (BPE merges
      // at the boundary otherwise); else fall back to tokenizing the continuation alone.
      const whole = await this.tokenizer.encode(context + c, { addSpecialTokens: typeof prompt === 'string' });
      const prefix = whole.length > ctxIds.length && ctxIds.every((id, i) => whole[i] === id);
      conts.push(prefix ? whole.slice(ctxIds.length) : await this.tokenizer.encode(c));
    }
    return continuationLogLikelihoods(this.lm, ctxIds, conts);
  }

  async close(): Promise<void> {
    await this.lm.close();
  }
}

/** generation_config.json of a model folder, or of an ONNX export (which has no safetensors to open). */
function generationConfigOf(dir: string): Record<string, unknown> {
  if (!isOnnxExport(dir)) {
    const folder = openModelFolder(dir);
    folder.close();
    return folder.generationConfig;
  }
  const p = join(dir, 'generation_config.json');
  if (!existsSync(p)) return {};
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new LoomError('MODEL_INVALID', `generation_config.json is not valid JSON: ${(e as Error).message}`, {
      file: p,
    });
  }
}
