import { LoomError } from '../../core/errors.ts';
import type { ChatModel, ChatResult, Message } from '../../core/types.ts';
import { readJsonlRows } from '../metrics/run.ts';

/**
 * A retrieval baseline: answers with the stored answer whose question is most similar to the user's last
 * message (character bigrams for CJK, words for Latin text, cosine of counts), or declines when nothing is close.
 * It is the bar a fine-tune must clear to be worth serving, and a stand-in for a hosted API in offline examples.
 */
export interface RetrievalOptions {
  /** Minimum cosine similarity to answer; below it the model declines. */
  threshold?: number;
  id?: string;
}

const HAN = /\p{Script=Han}/u;

export function features(text: string): Map<string, number> {
  const f = new Map<string, number>();
  const lower = text.toLowerCase();
  const add = (k: string) => f.set(k, (f.get(k) ?? 0) + 1);
  for (const w of lower.match(/[a-z0-9]+/g) ?? []) add(`w:${w}`);
  const han = [...lower].filter((c) => HAN.test(c));
  for (let i = 0; i < han.length; i++) {
    add(`c:${han[i]}`);
    if (i + 1 < han.length) add(`b:${han[i]}${han[i + 1]}`);
  }
  return f;
}

export function cosine(a: Map<string, number>, b: Map<string, number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [k, v] of a) {
    na += v * v;
    const w = b.get(k);
    if (w) dot += v * w;
  }
  for (const v of b.values()) nb += v * v;
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

export class RetrievalModel implements ChatModel {
  readonly id: string;
  private readonly entries: { q: Map<string, number>; answer: string }[] = [];
  private readonly threshold: number;

  constructor(pairs: { question: string; answer: string }[], opts: RetrievalOptions = {}) {
    this.id = opts.id ?? 'retrieval:faq';
    this.threshold = opts.threshold ?? 0.35;
    for (const p of pairs) this.entries.push({ q: features(p.question), answer: p.answer });
  }

  /** Reads question/answer pairs from a messages JSONL file (last user turn → following assistant turn). */
  static fromMessagesFile(path: string, opts: RetrievalOptions = {}): RetrievalModel {
    const pairs: { question: string; answer: string }[] = [];
    for (const { value } of readJsonlRows(path, 'retrieval data')) {
      const msgs = Array.isArray(value.messages) ? (value.messages as Message[]) : [];
      for (let j = 1; j < msgs.length; j++) {
        if (msgs[j]!.role === 'assistant' && msgs[j - 1]!.role === 'user') {
          pairs.push({ question: msgs[j - 1]!.content, answer: msgs[j]!.content });
        }
      }
    }
    if (pairs.length === 0) {
      throw new LoomError('INPUT_FORMAT', 'no user→assistant pairs found', { file: path, hint: 'use messages JSONL' });
    }
    return new RetrievalModel(pairs, opts);
  }

  async chat(messages: Message[]): Promise<ChatResult> {
    const last = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    const q = features(last);
    let best = -1;
    let answer = '';
    for (const e of this.entries) {
      const s = cosine(q, e.q);
      if (s > best) {
        best = s;
        answer = e.answer;
      }
    }
    if (best < this.threshold) {
      answer = HAN.test(last)
        ? '抱歉，这个问题超出了我的服务范围。我可以帮您处理订单、物流、退换货、退款、支付、发票和账户相关的问题。'
        : "Sorry, I can't help with that. I can help with orders, shipping, returns, refunds, payments, invoices and accounts.";
    }
    const promptChars = messages.reduce((n, m) => n + m.content.length, 0);
    return {
      text: answer,
      usage: { promptTokens: promptChars, completionTokens: answer.length },
      finishReason: 'stop',
    };
  }
}
