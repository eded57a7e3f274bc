import type { DataRow, Message, SourceRef } from '../../core/types.ts';
import { isRecord, type JsonRecord, malformed, metaOf, optString, parseMessage, parseMessages } from './common.ts';

/**
 * Loom's own shapes, one JSON object per line:
 * - messages:       {"messages":[{"role","content","loss_weight"?}], "meta":{}}
 * - text:           {"text": "...", "meta":{}}                      (pretraining)
 * - classification: {"text": "...", "label": "...", "meta":{}}
 * - preference:     {"prompt":[messages] | "...", "chosen":[messages] | "...", "rejected": … , "meta":{}}
 */
export type CanonicalKind = 'messages' | 'text' | 'classification' | 'preference';

export function detectCanonicalKind(rec: JsonRecord): CanonicalKind | undefined {
  if ('chosen' in rec && 'rejected' in rec && ('prompt' in rec || 'messages' in rec)) return 'preference';
  if ('messages' in rec) return 'messages';
  if ('text' in rec && 'label' in rec) return 'classification';
  if ('text' in rec) return 'text';
  return undefined;
}

function parseSide(v: unknown, source: SourceRef, field: string): Message[] | string {
  if (typeof v === 'string') return v;
  if (isRecord(v)) return [parseMessage(v, source, field)];
  return parseMessages(v, source, field);
}

export function fromCanonical(rec: JsonRecord, source: SourceRef, id: string, kind?: CanonicalKind): DataRow {
  const k = kind ?? detectCanonicalKind(rec);
  const meta = metaOf(rec);
  switch (k) {
    case 'messages':
      return { id, messages: parseMessages(rec.messages, source, 'messages'), meta, source };
    case 'text': {
      const text = optString(rec, 'text', source);
      if (text === undefined) throw malformed('missing "text"', source, 'text');
      return { id, text, meta, source };
    }
    case 'classification': {
      const text = optString(rec, 'text', source);
      if (text === undefined) throw malformed('missing "text"', source, 'text');
      const label = optString(rec, 'label', source);
      if (label === undefined || label === '') throw malformed('missing "label"', source, 'label');
      return { id, text, label, meta, source };
    }
    case 'preference': {
      const p = rec.prompt ?? rec.messages;
      const prompt: Message[] =
        typeof p === 'string' ? [{ role: 'user', content: p }] : parseMessages(p, source, 'prompt');
      return {
        id,
        prompt,
        chosen: parseSide(rec.chosen, source, 'chosen'),
        rejected: parseSide(rec.rejected, source, 'rejected'),
        meta,
        source,
      };
    }
    default:
      throw malformed(
        'record has none of "messages", "text", "chosen"/"rejected"',
        source,
        undefined,
        'give each line a "messages" array, a "text" field, or set the input format (alpaca, sharegpt, openai)',
      );
  }
}

/** Canonical JSON object for a row (meta kept, source and id left out unless `withSource`). */
export function toCanonical(row: DataRow, opts: { withSource?: boolean } = {}): JsonRecord {
  const out: JsonRecord = {};
  if (row.messages) out.messages = row.messages.map(cleanMessage);
  else if (row.chosen !== undefined || row.rejected !== undefined) {
    out.prompt = (row.prompt ?? []).map(cleanMessage);
    out.chosen = side(row.chosen);
    out.rejected = side(row.rejected);
  } else {
    out.text = row.text ?? '';
    if (row.label !== undefined) out.label = row.label;
  }
  out.meta = opts.withSource ? { ...row.meta, id: row.id, source: row.source } : row.meta;
  return out;
}

function side(v: Message[] | string | undefined): unknown {
  if (v === undefined) return [];
  return typeof v === 'string' ? v : v.map(cleanMessage);
}

export function cleanMessage(m: Message): Message {
  const o: Message = { role: m.role, content: m.content };
  if (m.loss_weight !== undefined) o.loss_weight = m.loss_weight;
  return o;
}

/** Preference side as messages (a bare string is one assistant turn). */
export function sideMessages(v: Message[] | string | undefined): Message[] {
  if (v === undefined) return [];
  return typeof v === 'string' ? [{ role: 'assistant', content: v }] : v;
}
