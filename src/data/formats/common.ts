import { LoomError } from '../../core/errors.ts';
import type { Message, Role, SourceRef } from '../../core/types.ts';

/**
 * Helpers shared by the format importers. Importers throw `LoomError('INPUT_MALFORMED', …)` with the source
 * place when a record cannot become a row, so the pipeline can put it in rejects.jsonl with a reason.
 */
export type JsonRecord = Record<string, unknown>;

const ROLES: readonly Role[] = ['system', 'user', 'assistant', 'tool'];

export function isRecord(v: unknown): v is JsonRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function malformed(message: string, source: SourceRef | undefined, field?: string, hint?: string): LoomError {
  return new LoomError('INPUT_MALFORMED', message, { file: source?.file, line: source?.line, field, hint });
}

/** Reads a string field; `undefined`/`null` give undefined, anything else that is not a string is an error. */
export function optString(rec: JsonRecord, key: string, source?: SourceRef): string | undefined {
  const v = rec[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw malformed(`field "${key}" must be a string, got ${typeOf(v)}`, source, key);
}

export function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Parses one `{role, content, loss_weight?}` message; `weight` (OpenAI) is accepted as loss_weight. */
export function parseMessage(v: unknown, source: SourceRef | undefined, where: string): Message {
  if (!isRecord(v)) throw malformed(`${where} must be an object with role and content`, source, where);
  const role = v.role;
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw malformed(
      `${where}: unknown role ${JSON.stringify(role)}`,
      source,
      `${where}.role`,
      `use one of ${ROLES.join(', ')}`,
    );
  }
  const content = v.content;
  if (typeof content !== 'string') {
    throw malformed(`${where}: content must be a string, got ${typeOf(content)}`, source, `${where}.content`);
  }
  const m: Message = { role: role as Role, content };
  const w = v.loss_weight ?? v.weight;
  if (w !== undefined && w !== null) {
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) {
      throw malformed(`${where}: loss_weight must be a number >= 0`, source, `${where}.loss_weight`);
    }
    m.loss_weight = w;
  }
  return m;
}

export function parseMessages(v: unknown, source: SourceRef | undefined, field: string): Message[] {
  if (!Array.isArray(v)) throw malformed(`"${field}" must be an array of messages, got ${typeOf(v)}`, source, field);
  return v.map((m, i) => parseMessage(m, source, `${field}[${i}]`));
}

export function metaOf(rec: JsonRecord): Record<string, unknown> {
  return isRecord(rec.meta) ? { ...rec.meta } : {};
}
