/**
 * The generation loop: batched prefill (left padding) and KV-cache decode over CausalLM, sampling with
 * generate/sampling.ts, stopping on EOS ids, stop strings (generate/stop.ts via TextStream) and max new tokens,
 * streaming decoded text that never splits a character (generate/stream.ts).
 *
 * API:
 *   generateIds(lm, prompts, opts)            -> IdsResult[]   token level: EOS / max tokens / onToken veto
 *   generateText(lm, tok, prompts, opts)      -> TextResult[]  text level: + stop strings, onText(row, delta)
 * Every row gets its own Sampler seeded with `seed`, so a prompt gives the same output alone or in a batch.
 */
import { LoomError } from '../core/errors.ts';
import type { GenerationSettings } from '../core/types.ts';
import type { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import type { CausalLM } from './causal-lm.ts';
import { Sampler, type SamplingSettings, type TokenHook } from './sampling.ts';
import { TextStream } from './stream.ts';

export const DEFAULT_MAX_NEW_TOKENS = 256;

export type FinishReason = 'eos' | 'stop' | 'length' | 'aborted';

export interface GenerateIdsOptions extends GenerationSettings {
  /** Ids that end a row (not included in the output). Default: config.json's (generateText adds the tokenizer's). */
  eosIds?: readonly number[];
  /** Id fed for left padding and for rows that have finished. Default: pad, else first EOS, else 0. */
  padId?: number;
  /** Called for each new token; return true to stop that row (finish reason 'stop'). */
  onToken?: (row: number, id: number) => boolean | undefined;
  /** Constrains / observes every row's token choice (sampling.ts TokenHook); logits are fetched when set. */
  hook?: TokenHook;
  signal?: AbortSignal;
}

export interface IdsResult {
  ids: number[];
  finishReason: FinishReason;
  promptTokens: number;
}

/** Runs generateIds-shaped work somewhere else, e.g. serve's continuous-batching scheduler (serve/scheduler.ts). */
export type IdsRunner = (prompts: readonly (readonly number[])[], opts: GenerateIdsOptions) => Promise<IdsResult[]>;

export function samplingOf(s: GenerationSettings & { hook?: TokenHook }): SamplingSettings {
  return {
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    minP: s.minP,
    repetitionPenalty: s.repetitionPenalty,
    presencePenalty: s.presencePenalty,
    frequencyPenalty: s.frequencyPenalty,
    seed: s.seed,
    hook: s.hook,
  };
}

export async function generateIds(
  lm: CausalLM,
  prompts: readonly (readonly number[])[],
  opts: GenerateIdsOptions = {},
): Promise<IdsResult[]> {
  const B = prompts.length;
  if (B === 0) return [];
  if (prompts.some((p) => p.length === 0)) {
    throw new LoomError('INPUT_MALFORMED', 'generate: every prompt needs at least one token', {
      hint: 'render the chat template (it starts with special tokens) or pass a non-empty prompt',
    });
  }
  const cfg = lm.config;
  const eos = new Set(opts.eosIds ?? cfg.eosTokenId);
  const padId = opts.padId ?? cfg.padTokenId ?? cfg.eosTokenId[0] ?? 0;
  const L = Math.max(...prompts.map((p) => p.length));
  const maxNew = maxNewTokensFor(lm, L, opts.maxNewTokens);
  const results: IdsResult[] = prompts.map((p) => ({ ids: [], finishReason: 'length', promptTokens: p.length }));
  if (maxNew === 0) return results;

  const settings = samplingOf(opts);
  const samplers = prompts.map(() => new Sampler(settings));
  const done = new Array<boolean>(B).fill(false);
  const mask = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  let input = prompts.map((p) => [...new Array<number>(L - p.length).fill(padId), ...p]);
  let cache = lm.emptyCache(B);
  const V = cfg.vocabSize;
  const graphGreedy = isGraphGreedy(settings);

  try {
    for (let step = 0; step < maxNew; step++) {
      if (opts.signal?.aborted) {
        for (let b = 0; b < B; b++) if (!done[b]) results[b]!.finishReason = 'aborted';
        break;
      }
      // The KV cache stays in the runtime's thread between steps (decode), sized to this request.
      const r = await lm.decode(input, mask, cache, { logits: !graphGreedy });
      cache = r.cache;
      const next: number[][] = [];
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          next.push([padId]);
          continue;
        }
        const res = results[b]!;
        const id = r.logits
          ? samplers[b]!.next(r.logits.subarray(b * V, (b + 1) * V), { prompt: prompts[b], generated: res.ids })
          : r.next[b]!;
        done[b] = takeToken(res, id, eos, opts.onToken && ((t) => opts.onToken?.(b, t)));
        next.push([done[b] ? padId : id]);
      }
      if (done.every(Boolean)) break;
      input = next;
      for (let b = 0; b < B; b++) mask[b]!.push(1);
    }
  } finally {
    await lm.releaseCache(cache);
  }
  return results;
}

/** One new token of a row: EOS ends it (not kept), else it is kept and onToken may stop the row. True when done. */
export function takeToken(
  res: IdsResult,
  id: number,
  eos: ReadonlySet<number>,
  onToken?: (id: number) => boolean | undefined,
): boolean {
  if (eos.has(id)) {
    res.finishReason = 'eos';
    onToken?.(id);
    return true;
  }
  res.ids.push(id);
  if (onToken?.(id)) {
    res.finishReason = 'stop';
    return true;
  }
  return false;
}

/** Plain greedy (no penalties, no hook) takes the graph's argmax: no B x vocab logits cross per token. */
export function isGraphGreedy(settings: SamplingSettings): boolean {
  return (
    (settings.temperature ?? 1) <= 0 &&
    (settings.repetitionPenalty ?? 1) === 1 &&
    !settings.presencePenalty &&
    !settings.frequencyPenalty &&
    !settings.hook
  );
}

/** Largest number of new tokens for prompts up to L tokens long (the model's positions bound it). */
export function maxNewTokensFor(lm: CausalLM, L: number, requested: number | undefined): number {
  const limit = Math.min(lm.config.maxPositionEmbeddings, 32768);
  if (L >= limit) {
    throw new LoomError('INPUT_MALFORMED', `prompt of ${L} tokens leaves no room in the model's ${limit} positions`);
  }
  return Math.max(0, Math.min(requested ?? DEFAULT_MAX_NEW_TOKENS, limit - L));
}

export interface GenerateTextOptions extends GenerateIdsOptions {
  /** Where the token-level work runs; default generateIds on `lm` (one batch for all prompts). */
  runIds?: IdsRunner;
  /** Streaming: text that became final for a row (never a partial character, never part of a stop string). */
  onText?: (row: number, delta: string) => void;
}

export interface TextResult extends IdsResult {
  text: string;
}

export async function generateText(
  lm: CausalLM,
  tok: LoomTokenizer,
  prompts: readonly (readonly number[])[],
  opts: GenerateTextOptions = {},
): Promise<TextResult[]> {
  if (!tok.hasByteTokens) {
    throw new LoomError('TOKENIZER', 'streaming text needs a byte-level BPE or sentencepiece vocabulary', {
      file: tok.source,
      hint: 'Llama-family tokenizers are one of these; this tokenizer.json has neither a ByteLevel nor a Metaspace/ByteFallback decoder',
    });
  }
  // Default EOS: the tokenizer's (eos, <|im_end|>, <|eot_id|>, generation_config) and config.json's.
  const eosIds = opts.eosIds ?? [...new Set([...tok.eosIds, ...lm.config.eosTokenId])];
  const streams = prompts.map(() => new TextStream(tok, { stop: opts.stop, eosIds }));
  const texts = prompts.map(() => '');
  const emit = (row: number, s: string): void => {
    if (!s) return;
    texts[row] += s;
    opts.onText?.(row, s);
  };
  const run: IdsRunner = opts.runIds ?? ((p, o) => generateIds(lm, p, o));
  const results = await run(prompts, {
    ...opts,
    eosIds,
    onToken: (row, id) => {
      const ev = streams[row]!.push(id);
      emit(row, ev.text);
      const vetoed = opts.onToken?.(row, id) === true;
      return (ev.stopped && ev.reason === 'stop') || vetoed;
    },
  });
  return results.map((r, row) => {
    if (r.finishReason === 'length' || r.finishReason === 'aborted') emit(row, streams[row]!.finish());
    return { ...r, text: texts[row]! };
  });
}
