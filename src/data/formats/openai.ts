import type { DataRow, Message, SourceRef } from '../../core/types.ts';
import { cleanMessage, sideMessages } from './canonical.ts';
import { isRecord, type JsonRecord, malformed, metaOf, parseMessages, typeOf } from './common.ts';

/**
 * OpenAI fine-tuning JSONL. Chat (SFT): `{"messages":[{"role","content","weight"?}]}` where `weight` 0/1 on an
 * assistant turn says whether it is trained on (our `loss_weight`). Preference (DPO):
 * `{"input":{"messages":[…]},"preferred_output":[assistant msg],"non_preferred_output":[assistant msg]}`.
 */
export function isOpenAiPreference(rec: JsonRecord): boolean {
  return 'preferred_output' in rec || 'non_preferred_output' in rec;
}

export function fromOpenAi(rec: JsonRecord, source: SourceRef, id: string): DataRow {
  const meta = metaOf(rec);
  if (isOpenAiPreference(rec)) {
    const input = rec.input;
    if (!isRecord(input))
      throw malformed(`"input" must be an object with messages, got ${typeOf(input)}`, source, 'input');
    if (input.tools !== undefined) meta.tools = input.tools;
    return {
      id,
      prompt: parseMessages(input.messages, source, 'input.messages'),
      chosen: parseMessages(rec.preferred_output, source, 'preferred_output'),
      rejected: parseMessages(rec.non_preferred_output, source, 'non_preferred_output'),
      meta,
      source,
    };
  }
  if (rec.tools !== undefined) meta.tools = rec.tools;
  return { id, messages: parseMessages(rec.messages, source, 'messages'), meta, source };
}

function openAiMessage(m: Message, source: SourceRef): JsonRecord {
  const o: JsonRecord = { role: m.role, content: m.content };
  if (m.loss_weight !== undefined) {
    // OpenAI only accepts weight 0 or 1, and only on assistant turns.
    if (m.role !== 'assistant') return o;
    if (m.loss_weight !== 0 && m.loss_weight !== 1) {
      throw malformed(
        `loss_weight ${m.loss_weight} cannot be written as OpenAI weight (0 or 1)`,
        source,
        'loss_weight',
      );
    }
    o.weight = m.loss_weight;
  }
  return o;
}

export function toOpenAi(row: DataRow): JsonRecord {
  if (row.messages) {
    const out: JsonRecord = { messages: row.messages.map((m) => openAiMessage(m, row.source)) };
    if (row.meta.tools !== undefined) out.tools = row.meta.tools;
    return out;
  }
  if (row.chosen !== undefined) {
    const input: JsonRecord = { messages: (row.prompt ?? []).map(cleanMessage) };
    if (row.meta.tools !== undefined) input.tools = row.meta.tools;
    return {
      input,
      preferred_output: sideMessages(row.chosen).map(cleanMessage),
      non_preferred_output: sideMessages(row.rejected).map(cleanMessage),
    };
  }
  throw malformed('cannot write a text row as OpenAI chat JSONL', row.source, 'text', 'use the text format');
}
