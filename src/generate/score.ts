/**
 * Per-token log-probabilities and perplexity of a text under a model (`loom model score`), and log-likelihoods of
 * continuations given a prompt (ChatModel.logLikelihood, multiple-choice evaluation).
 *
 * API:
 *   logSoftmaxRow(logits, offset, V, id)           -> log p(id) from one row of logits (float64 log-sum-exp)
 *   scoreIds(lm, ids, { window?, stride? })        -> { logprobs (null for the first token), windows }
 *   scoreText(lm, tok, text, { addSpecialTokens, window?, stride? })
 *                                                  -> TextScore with token strings (bytes of partial characters
 *                                                     as <0xNN>); perplexity null when nothing is predicted
 * Texts longer than the window (default: the model's context) are scored with a sliding window as in the HF
 * perplexity guide: windows of `window` tokens start every `stride` tokens, and each window scores only the tokens
 * the previous one did not, each conditioned on up to window-1 tokens before it.
 *   continuationLogLikelihoods(lm, contextIds, continuationIds[]) -> number[] (sum of log p of each continuation)
 */
import { LoomError } from '../core/errors.ts';
import type { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import type { CausalLM } from './causal-lm.ts';

export interface TokenScore {
  id: number;
  token: string;
  /** log p(token | previous tokens); null for the first token, which has no context. */
  logprob: number | null;
}

export interface TextScore {
  tokens: TokenScore[];
  /** Scored tokens (all but the first). */
  count: number;
  sumLogprob: number;
  /** null when no token was scored (a 1-token text: nothing after the first token to predict). */
  meanLogprob: number | null;
  perplexity: number | null;
  /** Forward passes: 1 unless the text is longer than the window. */
  windows: number;
  window: number;
  stride: number;
}

export interface WindowOptions {
  /** Tokens per forward pass (default: the model's context, at most 32768). */
  window?: number;
  /** Tokens between window starts (default: half the window, the HF perplexity guide's ratio). */
  stride?: number;
}

function logSoftmaxRow(logits: Float32Array, offset: number, V: number, id: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[offset + v] as number);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp((logits[offset + v] as number) - max);
  return (logits[offset + id] as number) - max - Math.log(sum);
}

const contextOf = (lm: CausalLM) => Math.min(lm.config.maxPositionEmbeddings, 32768);

function checkLength(lm: CausalLM, n: number): void {
  const limit = contextOf(lm);
  if (n > limit) {
    throw new LoomError('INPUT_MALFORMED', `text is ${n} tokens, more than the model's ${limit} positions`, {
      hint: 'score a shorter text',
    });
  }
}

function windowOf(lm: CausalLM, o: WindowOptions): { window: number; stride: number } {
  const window = o.window ?? contextOf(lm);
  if (!Number.isInteger(window) || window < 2) {
    throw new LoomError('CONFIG_INVALID', `the window must be an integer of at least 2 tokens, not ${window}`, {
      field: 'window',
    });
  }
  if (window > contextOf(lm)) {
    throw new LoomError(
      'CONFIG_INVALID',
      `the window (${window}) is longer than the model's ${contextOf(lm)} positions`,
      {
        field: 'window',
        hint: `use --window ${contextOf(lm)} or less`,
      },
    );
  }
  const stride = o.stride ?? Math.max(1, Math.floor(window / 2));
  // stride < window: consecutive windows overlap, so the first token a window scores has context in it (HF's loop
  // with stride = window silently drops the token at each window start)
  if (!Number.isInteger(stride) || stride < 1 || stride >= window) {
    throw new LoomError('CONFIG_INVALID', `the stride must be an integer from 1 to ${window - 1}, not ${stride}`, {
      field: 'stride',
      hint: 'windows must overlap so that every token after the first is predicted from at least one token before it',
    });
  }
  return { window, stride };
}

export async function scoreIds(
  lm: CausalLM,
  ids: readonly number[],
  o: WindowOptions = {},
): Promise<{ logprobs: (number | null)[]; windows: number; window: number; stride: number }> {
  const { window, stride } = windowOf(lm, o);
  if (ids.length === 0) return { logprobs: [], windows: 0, window, stride };
  const V = lm.config.vocabSize;
  const logprobs: (number | null)[] = [null];
  let windows = 0;
  // HF perplexity guide: begin = 0, stride, 2·stride…; the window [begin, end) scores the targets prevEnd..end-1
  let prevEnd = 1;
  for (let begin = 0; prevEnd < ids.length; begin += stride) {
    const end = Math.min(begin + window, ids.length);
    const logits = await lm.forward([ids.slice(begin, end)]);
    windows++;
    for (let t = prevEnd; t < end; t++) {
      logprobs.push(logSoftmaxRow(logits, (t - 1 - begin) * V, V, ids[t] as number));
    }
    prevEnd = end;
  }
  return { logprobs, windows, window, stride };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * What one token stands for, for display: its text, or `<0xE4><0xBD>` for a token that holds only part of a
 * multi-byte character (decoding it alone would print U+FFFD and hide which bytes it is).
 */
async function tokenText(tok: LoomTokenizer, id: number): Promise<string> {
  if (!tok.hasByteTokens) return tok.decode([id]);
  const bytes = tok.tokenBytes(id);
  try {
    return utf8.decode(bytes);
  } catch {
    return [...bytes].map((b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`).join('');
  }
}

/**
 * A text of one token (after special tokens: a tokenizer that adds BOS scores the first text token from BOS) has
 * nothing to predict: it is reported with count 0 and a null mean log-probability and perplexity, not refused.
 */
export async function scoreText(
  lm: CausalLM,
  tok: LoomTokenizer,
  text: string,
  opts: { addSpecialTokens?: boolean } & WindowOptions = {},
): Promise<TextScore> {
  const ids = await tok.encode(text, { addSpecialTokens: opts.addSpecialTokens ?? true });
  const { logprobs, windows, window, stride } = await scoreIds(lm, ids, opts);
  const tokens: TokenScore[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    tokens.push({ id, token: await tokenText(tok, id), logprob: logprobs[i] ?? null });
  }
  const scored = logprobs.filter((x): x is number => x !== null);
  const sumLogprob = scored.reduce((a, b) => a + b, 0);
  const meanLogprob = scored.length ? sumLogprob / scored.length : null;
  const perplexity = meanLogprob === null ? null : Math.exp(-meanLogprob);
  return { tokens, count: scored.length, sumLogprob, meanLogprob, perplexity, windows, window, stride };
}

/**
 * Sum of log p(continuation | context) for each continuation, in one left-padded batch.
 * The context must be non-empty (the first continuation token needs something to condition on).
 */
export async function continuationLogLikelihoods(
  lm: CausalLM,
  context: readonly number[],
  continuations: readonly (readonly number[])[],
): Promise<number[]> {
  if (context.length === 0) throw new LoomError('INPUT_MALFORMED', 'log-likelihood needs a non-empty context');
  if (continuations.length === 0) return [];
  const seqs = continuations.map((c) => [...context, ...c]);
  const T = Math.max(...seqs.map((s) => s.length));
  checkLength(lm, T);
  const pad = lm.config.padTokenId ?? lm.config.eosTokenId[0] ?? 0;
  const ids = seqs.map((s) => [...new Array<number>(T - s.length).fill(pad), ...s]);
  const mask = seqs.map((s) => [...new Array<number>(T - s.length).fill(0), ...new Array<number>(s.length).fill(1)]);
  const V = lm.config.vocabSize;
  const logits = await lm.forward(ids, mask);
  return continuations.map((c, b) => {
    const start = T - c.length; // index of the first continuation token in the padded row
    let sum = 0;
    for (let j = 0; j < c.length; j++) {
      const t = start + j;
      sum += logSoftmaxRow(logits, (b * T + t - 1) * V, V, c[j] as number);
    }
    return sum;
  });
}
