/**
 * Per-token log-probabilities and perplexity of a text under a model (`loom model score`), and log-likelihoods of
 * continuations given a prompt (ChatModel.logLikelihood, multiple-choice evaluation).
 *
 * API:
 *   logSoftmaxRow(logits, offset, V, id)           -> log p(id) from one row of logits (float64 log-sum-exp)
 *   scoreIds(lm, ids)                              -> { logprobs (null for the first token), perplexity, ... }
 *   scoreText(lm, tok, text, { addSpecialTokens }) -> TextScore with token strings (bytes of partial characters
 *                                                     as <0xNN>)
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
  meanLogprob: number;
  perplexity: number;
}

export function logSoftmaxRow(logits: Float32Array, offset: number, V: number, id: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[offset + v] as number);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp((logits[offset + v] as number) - max);
  return (logits[offset + id] as number) - max - Math.log(sum);
}

function checkLength(lm: CausalLM, n: number): void {
  const limit = Math.min(lm.config.maxPositionEmbeddings, 32768);
  if (n > limit) {
    throw new LoomError('INPUT_MALFORMED', `text is ${n} tokens, more than the model's ${limit} positions`, {
      hint: 'score a shorter text',
    });
  }
}

export async function scoreIds(lm: CausalLM, ids: readonly number[]): Promise<{ logprobs: (number | null)[] }> {
  if (ids.length === 0) return { logprobs: [] };
  checkLength(lm, ids.length);
  const V = lm.config.vocabSize;
  const logits = await lm.forward([ids]);
  const logprobs: (number | null)[] = [null];
  for (let t = 1; t < ids.length; t++) logprobs.push(logSoftmaxRow(logits, (t - 1) * V, V, ids[t] as number));
  return { logprobs };
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

export async function scoreText(
  lm: CausalLM,
  tok: LoomTokenizer,
  text: string,
  opts: { addSpecialTokens?: boolean } = {},
): Promise<TextScore> {
  const ids = await tok.encode(text, { addSpecialTokens: opts.addSpecialTokens ?? true });
  if (ids.length < 2) {
    throw new LoomError('INPUT_MALFORMED', `the text encodes to ${ids.length} token(s); at least 2 are needed`, {
      hint: 'a perplexity needs a token to predict after the first one',
    });
  }
  const { logprobs } = await scoreIds(lm, ids);
  const tokens: TokenScore[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    tokens.push({ id, token: await tokenText(tok, id), logprob: logprobs[i] ?? null });
  }
  const scored = logprobs.filter((x): x is number => x !== null);
  const sumLogprob = scored.reduce((a, b) => a + b, 0);
  const meanLogprob = sumLogprob / scored.length;
  return { tokens, count: scored.length, sumLogprob, meanLogprob, perplexity: Math.exp(-meanLogprob) };
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
