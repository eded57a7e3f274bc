/**
 * logprobs in OpenAI's shapes, from the local engine's token choices. A logprob is log-softmax of the raw model
 * logits at that step (before temperature, penalties, top-p or a JSON constraint), which is what vLLM reports by
 * default and what is comparable across sampling settings. End-of-sequence tokens are not listed (OpenAI lists
 * none either).
 *
 * API:
 *   logprobHook(tok, eosIds, top, onEntry) -> TokenHook   one TokenLogprob per generated token
 *   combineHooks(a, b)                    -> TokenHook     a's and b's allow() both hold; both told each choice
 *   completionLogprobs(entries, offset)   -> the legacy /v1/completions shape {tokens, token_logprobs, ...}
 */
import type { TokenHook } from '../generate/sampling.ts';
import type { ByteTokenizer } from './json-mode.ts';

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** One entry of a chat choice's `logprobs.content`. */
export interface TokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

const text = new TextDecoder('utf-8', { fatal: false });

export function logprobHook(
  tok: ByteTokenizer,
  eosIds: Iterable<number>,
  top: number,
  onEntry: (e: TokenLogprob) => void,
): TokenHook {
  const eos = new Set(eosIds);
  const entry = (id: number, logprob: number): TopLogprob => {
    const bytes = tok.tokenBytes(id);
    return { token: text.decode(bytes), logprob, bytes: [...bytes] };
  };
  return {
    chosen(id, logits) {
      if (eos.has(id)) return;
      let max = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < logits.length; i++) if ((logits[i] as number) > max) max = logits[i] as number;
      let sum = 0;
      for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - max);
      const lse = max + Math.log(sum);
      // The `top` best ids by logit, ties to the lower id (a small insertion list: top <= 20).
      const best: number[] = [];
      for (let i = 0; i < logits.length && top > 0; i++) {
        const v = logits[i] as number;
        if (best.length === top && v <= (logits[best[top - 1]!] as number)) continue;
        let j = best.length;
        while (j > 0 && (logits[best[j - 1]!] as number) < v) j--;
        best.splice(j, 0, i);
        if (best.length > top) best.pop();
      }
      onEntry({
        ...entry(id, (logits[id] as number) - lse),
        top_logprobs: best.map((b) => entry(b, (logits[b] as number) - lse)),
      });
    },
  };
}

export function combineHooks(a: TokenHook | undefined, b: TokenHook | undefined): TokenHook | undefined {
  if (!a || !b) return a ?? b;
  return {
    allow: a.allow || b.allow ? (id) => (a.allow?.(id) ?? true) && (b.allow?.(id) ?? true) : undefined,
    chosen(id, logits) {
      a.chosen?.(id, logits);
      b.chosen?.(id, logits);
    },
  };
}

/**
 * The legacy shape names tokens by string only (top_logprobs is an object keyed by token), so a token holding part
 * of a UTF-8 character is written as OpenAI does, `bytes:\xe4\xb8`, and two such tokens never collide.
 */
function legacyToken(t: TopLogprob): string {
  const exact = Buffer.from(t.token, 'utf8').equals(Buffer.from(t.bytes));
  return exact ? t.token : `bytes:${t.bytes.map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}`;
}

/** `offset`: characters of completion text before these tokens (streamed chunks continue the count). */
export function completionLogprobs(entries: readonly TokenLogprob[], offset = 0): CompletionLogprobs {
  const text_offset: number[] = [];
  let at = offset;
  for (const e of entries) {
    text_offset.push(at);
    at += e.token.length;
  }
  return {
    tokens: entries.map(legacyToken),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top_logprobs.map((t) => [legacyToken(t), t.logprob]))),
    text_offset,
  };
}
