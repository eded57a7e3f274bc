import type { DataRow, Message, SourceRef } from '../../core/types.ts';
import { cleanMessage, sideMessages } from './canonical.ts';
import { type JsonRecord, malformed, metaOf, optString, typeOf } from './common.ts';

/**
 * Alpaca records as LLaMA-Factory reads them (data/README.md): the user turn is `instruction + "\n" + input`,
 * `output` is the answer, `system` the system prompt, `history` a list of [user, assistant] pairs before it
 * (whose answers are trained on too). With `chosen`/`rejected` it is a preference pair; with only a text
 * column (registry `columns: {prompt: text}`) it is pretraining text.
 */
export interface AlpacaColumns {
  prompt: string;
  query: string;
  response: string;
  system: string;
  history: string;
  chosen: string;
  rejected: string;
}

export const ALPACA_DEFAULT_COLUMNS: AlpacaColumns = {
  prompt: 'instruction',
  query: 'input',
  response: 'output',
  system: 'system',
  history: 'history',
  chosen: 'chosen',
  rejected: 'rejected',
};

function alpacaColumns(partial?: Partial<AlpacaColumns>): AlpacaColumns {
  return { ...ALPACA_DEFAULT_COLUMNS, ...(partial ?? {}) };
}

function parseHistory(v: unknown, source: SourceRef, field: string): Message[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw malformed(`"${field}" must be a list of [user, assistant] pairs`, source, field);
  const out: Message[] = [];
  v.forEach((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw malformed(`"${field}[${i}]" must be a pair of strings, got ${typeOf(pair)}`, source, `${field}[${i}]`);
    }
    out.push({ role: 'user', content: pair[0] }, { role: 'assistant', content: pair[1] });
  });
  return out;
}

export function fromAlpaca(
  rec: JsonRecord,
  source: SourceRef,
  id: string,
  columns?: Partial<AlpacaColumns>,
  opts: { pretraining?: boolean } = {},
): DataRow {
  const c = alpacaColumns(columns);
  const meta = metaOf(rec);
  const instruction = optString(rec, c.prompt, source);
  if (opts.pretraining) {
    if (instruction === undefined) throw malformed(`missing "${c.prompt}"`, source, c.prompt);
    return { id, text: instruction, meta, source };
  }
  const input = optString(rec, c.query, source);
  if (instruction === undefined && input === undefined) {
    throw malformed(`missing "${c.prompt}"`, source, c.prompt, `alpaca rows need "${c.prompt}" and "${c.response}"`);
  }
  const user = [instruction, input].filter((s) => s !== undefined && s !== '').join('\n');
  const system = optString(rec, c.system, source);
  const prefix: Message[] = [];
  if (system) prefix.push({ role: 'system', content: system });
  prefix.push(...parseHistory(rec[c.history], source, c.history));
  prefix.push({ role: 'user', content: user });
  if (rec[c.chosen] !== undefined || rec[c.rejected] !== undefined) {
    const chosen = optString(rec, c.chosen, source);
    const rejected = optString(rec, c.rejected, source);
    if (chosen === undefined || rejected === undefined) {
      throw malformed(`preference rows need both "${c.chosen}" and "${c.rejected}"`, source, c.chosen);
    }
    return { id, prompt: prefix, chosen, rejected, meta, source };
  }
  const output = optString(rec, c.response, source);
  if (output === undefined) throw malformed(`missing "${c.response}"`, source, c.response);
  return { id, messages: [...prefix, { role: 'assistant', content: output }], meta, source };
}

/**
 * Splits a conversation into alpaca parts. It must be [system?] then user/assistant pairs ending in an
 * assistant turn; anything else (tool turns, two users in a row) cannot be written as alpaca.
 */
function alpacaParts(messages: Message[], source: SourceRef, needAnswer: boolean) {
  let i = 0;
  let system: string | undefined;
  if (messages[0]?.role === 'system') {
    system = messages[0].content;
    i = 1;
  }
  const turns = messages.slice(i);
  const shapeOk = turns.length > 0 && (turns.length % 2 === 1) === !needAnswer;
  const pairs: [string, string][] = [];
  for (let k = 0; k < turns.length; k += 2) {
    const u = turns[k]!;
    const a = turns[k + 1];
    if (!shapeOk || u.role !== 'user' || (a !== undefined && a.role !== 'assistant')) {
      throw malformed(
        'cannot write as alpaca: turns must be [system] then user/assistant pairs',
        source,
        'messages',
        'export as sharegpt or openai instead',
      );
    }
    pairs.push([u.content, a?.content ?? '']);
  }
  if (!shapeOk) throw malformed('cannot write as alpaca: no user turn', source, 'messages');
  const last = pairs.pop()!;
  return { system, history: pairs, instruction: last[0], output: last[1] };
}

export function toAlpaca(row: DataRow, columns?: Partial<AlpacaColumns>): JsonRecord {
  const c = alpacaColumns(columns);
  const out: JsonRecord = {};
  if (row.messages) {
    // Alpaca has no per-turn weights (LLaMA-Factory trains on every history answer): refuse rather than drop them.
    if (row.messages.some((m) => m.loss_weight !== undefined && m.loss_weight !== 1)) {
      throw malformed(
        'cannot write per-message loss_weight as alpaca',
        row.source,
        'loss_weight',
        'export as messages or openai',
      );
    }
    const p = alpacaParts(row.messages, row.source, true);
    out[c.prompt] = p.instruction;
    out[c.query] = '';
    out[c.response] = p.output;
    if (p.system !== undefined) out[c.system] = p.system;
    if (p.history.length) out[c.history] = p.history;
    return out;
  }
  if (row.chosen !== undefined) {
    const p = alpacaParts((row.prompt ?? []).map(cleanMessage), row.source, false);
    out[c.prompt] = p.instruction;
    out[c.query] = '';
    out[c.chosen] = sideText(row.chosen, row.source);
    out[c.rejected] = sideText(row.rejected, row.source);
    if (p.system !== undefined) out[c.system] = p.system;
    if (p.history.length) out[c.history] = p.history;
    return out;
  }
  // Pretraining text: LLaMA-Factory reads it through the prompt column (registry `columns: {prompt: text}`).
  return { text: row.text ?? '' };
}

function sideText(v: Message[] | string | undefined, source: SourceRef): string {
  const ms = sideMessages(v);
  if (ms.length !== 1 || ms[0]!.role !== 'assistant') {
    throw malformed('alpaca preference sides must be one assistant answer', source, 'chosen');
  }
  return ms[0]!.content;
}
