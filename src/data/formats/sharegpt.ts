import type { DataRow, Message, Role, SourceRef } from '../../core/types.ts';
import { sideMessages } from './canonical.ts';
import { isRecord, type JsonRecord, malformed, metaOf, optString, typeOf } from './common.ts';

/**
 * ShareGPT records with LLaMA-Factory's column and tag mapping (data/README.md): messages live in the
 * `conversations` column as `{from, value}` objects whose `from` is one of the tag values below. OpenAI-style
 * files are the same shape with tags remapped to role/content/user/assistant/system.
 */
export interface ShareGptTags {
  role_tag: string;
  content_tag: string;
  user_tag: string;
  assistant_tag: string;
  observation_tag: string;
  function_tag: string;
  system_tag: string;
  /**
   * Joins a turn whose content is a list of utterances (`turns[].utterances: ["…", "…"]`, as helpdesk and chat
   * exports write several messages in a row from one speaker), in order. Default a newline.
   */
  utterance_separator?: string;
}

/** Default `utterance_separator`: one line per utterance, as the speaker sent them. */
const UTTERANCE_SEPARATOR = '\n';

/**
 * A turn's content: a string, or a list of strings joined in order with the separator; anything else is
 * undefined (the caller reports it with the turn's position).
 */
export function turnContent(v: unknown, separator: string | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((u) => typeof u === 'string')) return v.join(separator ?? UTTERANCE_SEPARATOR);
  return undefined;
}

export interface ShareGptColumns {
  messages: string;
  system: string;
  tools: string;
  chosen: string;
  rejected: string;
}

export const SHAREGPT_DEFAULT_TAGS: ShareGptTags = {
  role_tag: 'from',
  content_tag: 'value',
  user_tag: 'human',
  assistant_tag: 'gpt',
  observation_tag: 'observation',
  function_tag: 'function_call',
  system_tag: 'system',
};

export const OPENAI_TAGS: ShareGptTags = {
  role_tag: 'role',
  content_tag: 'content',
  user_tag: 'user',
  assistant_tag: 'assistant',
  observation_tag: 'tool',
  function_tag: 'function_call',
  system_tag: 'system',
};

export const SHAREGPT_DEFAULT_COLUMNS: ShareGptColumns = {
  messages: 'conversations',
  system: 'system',
  tools: 'tools',
  chosen: 'chosen',
  rejected: 'rejected',
};

export interface ShareGptOptions {
  columns?: Partial<ShareGptColumns>;
  tags?: Partial<ShareGptTags>;
}

function resolve(opts: ShareGptOptions = {}) {
  return {
    c: { ...SHAREGPT_DEFAULT_COLUMNS, ...(opts.columns ?? {}) },
    t: { ...SHAREGPT_DEFAULT_TAGS, ...(opts.tags ?? {}) },
  };
}

/**
 * A function_call turn is the assistant calling a tool; we keep it as an assistant message and remember its
 * index in `meta.function_call_turns` so exporting back to sharegpt restores the tag.
 */
function parseTurn(v: unknown, t: ShareGptTags, source: SourceRef, where: string): { m: Message; fn: boolean } {
  if (!isRecord(v)) throw malformed(`${where} must be an object, got ${typeOf(v)}`, source, where);
  const from = v[t.role_tag];
  const content = turnContent(v[t.content_tag], t.utterance_separator);
  if (content === undefined) {
    const raw = v[t.content_tag];
    const list: unknown[] = Array.isArray(raw) ? raw : [];
    const bad = list.findIndex((u) => typeof u !== 'string');
    throw malformed(
      bad >= 0
        ? `${where}.${t.content_tag}[${bad}] must be a string, got ${typeOf(list[bad])}`
        : `${where}.${t.content_tag} must be a string or a list of strings, got ${typeOf(raw)}`,
      source,
      where,
      raw === undefined ? 'set tags.content_tag to the field that holds the text of a turn' : undefined,
    );
  }
  const map: Record<string, Role> = {
    [t.user_tag]: 'user',
    [t.assistant_tag]: 'assistant',
    [t.observation_tag]: 'tool',
    [t.function_tag]: 'assistant',
    [t.system_tag]: 'system',
  };
  const role = typeof from === 'string' ? map[from] : undefined;
  if (role === undefined) {
    throw malformed(
      `${where}: unknown ${t.role_tag} ${JSON.stringify(from)}`,
      source,
      `${where}.${t.role_tag}`,
      `expected one of ${Object.keys(map).join(', ')}; set tags (user_tag, assistant_tag, …) for this file`,
    );
  }
  const m: Message = { role, content };
  const w = v.loss_weight ?? v.weight;
  if (typeof w === 'number') m.loss_weight = w;
  return { m, fn: from === t.function_tag && t.function_tag !== t.assistant_tag };
}

function parseTurns(v: unknown, t: ShareGptTags, source: SourceRef, field: string) {
  if (!Array.isArray(v)) throw malformed(`"${field}" must be a list of turns, got ${typeOf(v)}`, source, field);
  const fn: number[] = [];
  const messages = v.map((x, i) => {
    const r = parseTurn(x, t, source, `${field}[${i}]`);
    if (r.fn) fn.push(i);
    return r.m;
  });
  return { messages, fn };
}

export function fromShareGpt(rec: JsonRecord, source: SourceRef, id: string, opts: ShareGptOptions = {}): DataRow {
  const { c, t } = resolve(opts);
  const meta = metaOf(rec);
  if (rec[c.messages] === undefined) {
    throw malformed(
      `missing "${c.messages}"`,
      source,
      c.messages,
      'set columns.messages to the column that holds the turns',
    );
  }
  const { messages, fn } = parseTurns(rec[c.messages], t, source, c.messages);
  const system = optString(rec, c.system, source);
  let shift = 0;
  if (system && messages[0]?.role !== 'system') {
    messages.unshift({ role: 'system', content: system });
    shift = 1;
  }
  if (fn.length) meta.function_call_turns = fn.map((i) => i + shift);
  if (rec[c.tools] !== undefined && rec[c.tools] !== '') meta.tools = rec[c.tools];
  if (rec[c.chosen] !== undefined || rec[c.rejected] !== undefined) {
    const side = (k: string) => {
      const v = rec[k];
      if (typeof v === 'string') return v;
      return [parseTurn(v, t, source, k).m];
    };
    return { id, prompt: messages, chosen: side(c.chosen), rejected: side(c.rejected), meta, source };
  }
  return { id, messages, meta, source };
}

export function toShareGpt(row: DataRow, opts: ShareGptOptions = {}): JsonRecord {
  const { c, t } = resolve(opts);
  const fnTurns = new Set(
    Array.isArray(row.meta.function_call_turns) ? (row.meta.function_call_turns as number[]) : [],
  );
  const tagOf = (m: Message, i: number): string => {
    if (m.role === 'assistant') return fnTurns.has(i) ? t.function_tag : t.assistant_tag;
    if (m.role === 'user') return t.user_tag;
    if (m.role === 'tool') return t.observation_tag;
    return t.system_tag;
  };
  const turn = (m: Message, i: number): JsonRecord => {
    const o: JsonRecord = { [t.role_tag]: tagOf(m, i), [t.content_tag]: m.content };
    if (m.loss_weight !== undefined) o.loss_weight = m.loss_weight;
    return o;
  };
  const msgs = row.messages ?? row.prompt;
  if (!msgs)
    throw malformed('cannot write a text row as sharegpt', row.source, 'text', 'use the text or alpaca format');
  const out: JsonRecord = {};
  // The system prompt goes to its own column, as LLaMA-Factory's sharegpt examples do.
  let start = 0;
  if (msgs[0]?.role === 'system') {
    out[c.system] = msgs[0].content;
    start = 1;
  }
  out[c.messages] = msgs.slice(start).map((m, i) => turn(m, i + start));
  if (row.meta.tools !== undefined) out[c.tools] = row.meta.tools;
  if (row.chosen !== undefined) {
    const one = (v: Message[] | string | undefined) => {
      const ms = sideMessages(v);
      if (ms.length !== 1) throw malformed('sharegpt preference sides must be one message', row.source, 'chosen');
      return turn(ms[0]!, -1);
    };
    out[c.chosen] = one(row.chosen);
    out[c.rejected] = one(row.rejected);
  }
  return out;
}
