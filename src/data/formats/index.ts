/**
 * One entry point for every dataset format Loom reads and writes. Import turns one parsed JSON record into a
 * DataRow (or throws INPUT_MALFORMED with file/line); export turns a DataRow into the JSON object of a format.
 */
import { FORMAT_NAMES, type FormatName } from '../../config/formats.ts';
import type { DataRow, SourceRef } from '../../core/types.ts';
import { ALPACA_DEFAULT_COLUMNS, type AlpacaColumns, fromAlpaca, toAlpaca } from './alpaca.ts';
import { type CanonicalKind, detectCanonicalKind, fromCanonical, toCanonical } from './canonical.ts';
import { isRecord, type JsonRecord, malformed, typeOf } from './common.ts';
import { fromOpenAi, isOpenAiPreference, toOpenAi } from './openai.ts';
import {
  fromShareGpt,
  OPENAI_TAGS,
  SHAREGPT_DEFAULT_COLUMNS,
  type ShareGptColumns,
  type ShareGptTags,
  toShareGpt,
} from './sharegpt.ts';

export { FORMAT_NAMES, type FormatName };
export type InputFormatName = FormatName | 'auto';

export interface FormatOptions {
  /** Column mapping (alpaca: prompt/query/response/system/history/chosen/rejected; sharegpt: messages/system/tools/chosen/rejected). */
  columns?: Record<string, string>;
  /** sharegpt tag names (role_tag, content_tag, user_tag, assistant_tag, observation_tag, function_tag, system_tag). */
  tags?: Partial<ShareGptTags>;
  /** alpaca: read the prompt column as pretraining text. */
  pretraining?: boolean;
  /** Keep `meta.id`/`meta.source` in canonical output so rows can be traced back. */
  withSource?: boolean;
}

export { ALPACA_DEFAULT_COLUMNS } from './alpaca.ts';
export { OPENAI_TAGS, SHAREGPT_DEFAULT_COLUMNS, SHAREGPT_DEFAULT_TAGS } from './sharegpt.ts';
export type { AlpacaColumns, CanonicalKind, ShareGptColumns, ShareGptTags };

/** Guesses the format of one record from its keys (used for `format: auto`). */
export function detectFormat(rec: JsonRecord): FormatName | undefined {
  if (isOpenAiPreference(rec)) return 'openai';
  if (Array.isArray(rec.conversations)) return 'sharegpt';
  if ('instruction' in rec && ('output' in rec || 'chosen' in rec)) return 'alpaca';
  if (Array.isArray(rec.messages)) {
    const first = rec.messages[0];
    if (isRecord(first) && 'from' in first && 'value' in first) return 'sharegpt';
    return detectCanonicalKind(rec) === 'preference' ? 'preference' : 'messages';
  }
  return detectCanonicalKind(rec);
}

export function importRecord(
  value: unknown,
  format: InputFormatName,
  source: SourceRef,
  id: string,
  opts: FormatOptions = {},
): DataRow {
  if (!isRecord(value)) {
    throw malformed(
      `expected a JSON object per record, got ${typeOf(value)}`,
      source,
      undefined,
      'one JSON object per line',
    );
  }
  const fmt = format === 'auto' ? detectFormat(value) : format;
  switch (fmt) {
    case 'alpaca':
      return fromAlpaca(value, source, id, opts.columns as Partial<AlpacaColumns>, { pretraining: opts.pretraining });
    case 'sharegpt':
      return fromShareGpt(value, source, id, {
        columns: sharegptColumns(value, opts),
        tags: opts.tags ?? (sharegptLooksOpenAi(value, opts) ? OPENAI_TAGS : undefined),
      });
    case 'openai':
      return fromOpenAi(value, source, id);
    case 'messages':
    case 'text':
    case 'classification':
    case 'preference':
      return fromCanonical(value, source, id, fmt as CanonicalKind);
    default:
      return fromCanonical(value, source, id);
  }
}

/** sharegpt turns live in `conversations` unless mapped; a file without it but with `messages` uses that. */
function sharegptColumns(rec: JsonRecord, opts: FormatOptions): Partial<ShareGptColumns> {
  const cols = { ...(opts.columns ?? {}) } as Partial<ShareGptColumns>;
  if (cols.messages === undefined && !('conversations' in rec) && Array.isArray(rec.messages))
    cols.messages = 'messages';
  return cols;
}

/** `format: sharegpt` on a file whose turns are {role, content}: use the OpenAI tags unless told otherwise. */
function sharegptLooksOpenAi(rec: JsonRecord, opts: FormatOptions): boolean {
  const col = opts.columns?.messages ?? 'conversations';
  const turns = rec[col] ?? rec.messages;
  const first = Array.isArray(turns) ? turns[0] : undefined;
  return isRecord(first) && 'role' in first && !('from' in first);
}

export function exportRow(row: DataRow, format: FormatName, opts: FormatOptions = {}): JsonRecord {
  switch (format) {
    case 'alpaca':
      return toAlpaca(row, opts.columns as Partial<AlpacaColumns>);
    case 'sharegpt':
      return toShareGpt(row, { columns: opts.columns as Partial<ShareGptColumns>, tags: opts.tags });
    case 'openai':
      return toOpenAi(row);
    case 'text': {
      const out = toCanonical(row, opts);
      if (out.text === undefined) throw malformed('row has no text', row.source, 'text');
      delete out.label;
      return out;
    }
    default: {
      const kind = rowKind(row);
      if (kind !== format) {
        throw malformed(
          `a ${kind} row cannot be written as ${format}`,
          row.source,
          undefined,
          `choose output format ${kind}`,
        );
      }
      return toCanonical(row, opts);
    }
  }
}

/** The canonical kind a row holds. */
export function rowKind(row: DataRow): CanonicalKind {
  if (row.messages) return 'messages';
  if (row.chosen !== undefined || row.rejected !== undefined) return 'preference';
  if (row.label !== undefined) return 'classification';
  return 'text';
}

const ROW_FIELDS = ['text', 'label', 'messages', 'prompt', 'chosen', 'rejected'] as const;

/** The source record of a row from ingest (which keeps unmapped fields in meta), for the importers. */
export function recordOf(row: DataRow): JsonRecord {
  const rec: JsonRecord = { ...row.meta };
  for (const f of ROW_FIELDS) if (row[f] !== undefined) rec[f] = row[f];
  return rec;
}

/** Source fields an importer turns into the row itself (so they are not copied into meta again). */
function consumedKeys(fmt: InputFormatName | undefined, columns: Record<string, string>): string[] {
  if (fmt === 'alpaca') return Object.values({ ...ALPACA_DEFAULT_COLUMNS, ...columns });
  if (fmt === 'sharegpt') return [...Object.values({ ...SHAREGPT_DEFAULT_COLUMNS, ...columns }), 'messages'];
  if (fmt === 'openai') return ['messages', 'input', 'preferred_output', 'non_preferred_output', 'tools'];
  return ['meta'];
}

/**
 * Imports a row read by src/data/ingest (any file format) as `format`: its fields are put back together, run
 * through the importer, and the source fields the importer did not use stay in meta. Keeps id and source.
 */
export function importDataRow(row: DataRow, format: InputFormatName, opts: FormatOptions = {}): DataRow {
  const rec = recordOf(row);
  const out = importRecord(rec, format, row.source, row.id, opts);
  const used = new Set(consumedKeys(format === 'auto' ? detectFormat(rec) : format, opts.columns ?? {}));
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row.meta)) if (!used.has(k)) extra[k] = v;
  out.meta = { ...extra, ...out.meta };
  return out;
}
