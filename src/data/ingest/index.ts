/**
 * Ingest: `readInputs(patterns, opts)` streams `DataRow`s (and `MalformedRecord`s for bad input) from files,
 * directories and globs.
 *
 *   for await (const item of readInputs(['raw/**\/*.jsonl', 'faq.csv'], { baseDir, columns: { text: 'q' } })) {
 *     if (isMalformed(item)) rejects.push(malformedToReject(item)); else rows.push(item);
 *   }
 *
 * Formats (by extension after removing `.gz` / `.zst`, or `opts.format`): JSONL (`.jsonl`, `.ndjson`), JSON
 * (`.json`: an array of objects, one object, or JSONL misnamed; read whole, up to `maxJsonBytes`, default 256 MiB),
 * CSV / TSV (csv-parse, first line is the header), Parquet (hyparquet, read in batches of row ranges; not inside
 * `.gz`/`.zst`), TXT (one doc per non-blank line, or per blank-line-separated block with `txtMode: 'block'`),
 * Markdown and HTML (one doc per file, converted to text; up to `maxJsonBytes`). Text inputs are decoded line by
 * line (see decode.ts for encoding detection), so memory stays bounded by the longest line.
 *
 * Fields: `columns` maps source fields to row fields (`text`, `label`, `messages`, `prompt`, `chosen`,
 * `rejected`, `id`); unmapped fields default to their own names, and every other field is kept in `meta`. A CSV
 * cell mapped to `messages` (or any payload cell starting with `[`) may hold JSON; a plain-text `prompt` becomes one
 * user message. Row ids are `<path>:<line>` where path is
 * relative to `baseDir` (posix separators) and line is 1-based (the record index for Parquet and JSON arrays), or
 * the value of the `columns.id` field when set.
 *
 * Malformed input (broken JSON, bad CSV quoting or field count, undecodable bytes, a corrupt compressed stream)
 * becomes a `MalformedRecord` with file, 1-based line, reason and the raw text; with `strict: true` the first one
 * throws `LoomError('INPUT_MALFORMED')` instead. `onFile` reports each file's format and detected encoding.
 */
import { statSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { IngestConfig } from '../../config/data-clean.ts';
import { LoomError } from '../../core/errors.ts';
import type { DataRow, Message, RejectRecord } from '../../core/types.ts';
import {
  type DecodedLine,
  decodeLines,
  type Encoding,
  type EncodingOption,
  innerName,
  openBytes,
  sniff,
} from './decode.ts';
import { expandInputs } from './glob.ts';
import { htmlToText, markdownToText } from './markup.ts';

export { detectEncoding, type Encoding, type EncodingOption } from './decode.ts';
export { expandInputs, globToRegExp } from './glob.ts';
export { htmlToText, markdownToText } from './markup.ts';

export type InputFormat = 'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet' | 'txt' | 'md' | 'html';

/** A piece of input that could not be read as a row; the runner writes it to rejects. */
export interface MalformedRecord {
  kind: 'malformed';
  /** Path as shown to users (relative to baseDir). */
  file: string;
  /** 1-based line (record index for Parquet / JSON arrays) where the bad record starts. */
  line: number;
  reason: string;
  /** The raw text of the bad record (lossy-decoded when its bytes were undecodable), capped at 64 KiB. */
  raw: string;
}

export type IngestItem = DataRow | MalformedRecord;

export function isMalformed(x: IngestItem): x is MalformedRecord {
  return (x as MalformedRecord).kind === 'malformed';
}

/** The reject record for a malformed input (step `ingest`, action `dropped`). */
export function malformedToReject(m: MalformedRecord): RejectRecord {
  return { step: 'ingest', reason: m.reason, action: 'dropped', source: { file: m.file, line: m.line }, row: m.raw };
}

export interface ColumnMap {
  text?: string;
  label?: string;
  messages?: string;
  prompt?: string;
  chosen?: string;
  rejected?: string;
  id?: string;
}

export interface FileInfo {
  file: string;
  format: InputFormat;
  encoding: Encoding | 'binary';
}

export interface ReadOptions {
  format?: InputFormat | 'auto';
  encoding?: EncodingOption;
  txtMode?: 'line' | 'block';
  columns?: ColumnMap;
  /** CSV delimiter (default `,` for .csv, tab for .tsv). */
  delimiter?: string;
  strict?: boolean;
  /** Folder that patterns and shown paths are relative to (default cwd). */
  baseDir?: string;
  /** Whole-file formats (JSON, Markdown, HTML) above this size are refused (default 256 MiB). */
  maxJsonBytes?: number;
  /** Lines longer than this many bytes are reported as malformed, not assembled (default 256 MiB). */
  maxLineBytes?: number;
  /** Parquet rows read per batch (default 8192). */
  parquetBatch?: number;
  /** Called once per file after format and encoding are known. */
  onFile?: (info: FileInfo) => void;
  /** Pre-expanded absolute file list (e.g. one shard); when set, `patterns` are ignored. */
  files?: readonly string[];
}

const RAW_CAP = 64 * 1024;
/** CSV: how many recent lines are kept to report a skipped record's raw text whole. */
const RECENT = 8192;

export function formatOf(file: string): InputFormat | undefined {
  const n = innerName(file).toLowerCase();
  if (n.endsWith('.jsonl') || n.endsWith('.ndjson')) return 'jsonl';
  if (n.endsWith('.json')) return 'json';
  if (n.endsWith('.csv')) return 'csv';
  if (n.endsWith('.tsv')) return 'tsv';
  if (n.endsWith('.parquet')) return 'parquet';
  if (n.endsWith('.txt')) return 'txt';
  if (n.endsWith('.md') || n.endsWith('.markdown')) return 'md';
  if (n.endsWith('.html') || n.endsWith('.htm')) return 'html';
  return undefined;
}

class FileReader {
  constructor(
    readonly abs: string,
    readonly shown: string,
    readonly opts: ReadOptions,
  ) {}

  malformed(line: number, reason: string, raw: string): MalformedRecord {
    if (this.opts.strict) {
      throw new LoomError('INPUT_MALFORMED', reason, {
        file: this.shown,
        line,
        hint: 'fix or remove that record, or run without --strict to send malformed records to rejects',
      });
    }
    return {
      kind: 'malformed',
      file: this.shown,
      line,
      reason,
      raw: raw.length > RAW_CAP ? raw.slice(0, RAW_CAP) : raw,
    };
  }

  /** Builds a row from a source object: mapped fields become row fields, the rest goes to meta. */
  toRow(obj: Record<string, unknown>, line: number, fromCsv: boolean): DataRow | string {
    const cols = this.opts.columns ?? {};
    const used = new Set<string>();
    const take = (field: keyof ColumnMap): unknown => {
      const key = cols[field] ?? field;
      if (!(key in obj)) return undefined;
      used.add(key);
      return obj[key];
    };
    const row: DataRow = { id: '', meta: {}, source: { file: this.shown, line } };
    const idVal = cols.id ? take('id') : undefined;
    row.id = idVal !== undefined && idVal !== null && idVal !== '' ? String(idVal) : `${this.shown}:${line}`;
    const text = take('text');
    if (text !== undefined && text !== null) {
      if (typeof text !== 'string') return `field "${cols.text ?? 'text'}" is not a string`;
      row.text = text;
    }
    const label = take('label');
    if (label !== undefined && label !== null && label !== '') {
      if (typeof label !== 'string' && typeof label !== 'number' && typeof label !== 'boolean') {
        return `field "${cols.label ?? 'label'}" is not a string`;
      }
      row.label = String(label);
    }
    for (const f of ['messages', 'prompt', 'chosen', 'rejected'] as const) {
      let v = take(f);
      if (v === undefined || v === null || v === '') continue;
      if (fromCsv && typeof v === 'string' && (f === 'messages' || /^\s*\[/.test(v))) {
        try {
          v = JSON.parse(v);
        } catch {
          return `field "${cols[f] ?? f}" does not hold valid JSON`;
        }
      }
      // A plain-text prompt (TRL-style preference rows) is one user turn.
      if (f === 'prompt' && typeof v === 'string') v = [{ role: 'user', content: v }];
      if (f === 'messages' || f === 'prompt') {
        if (!Array.isArray(v)) return `field "${cols[f] ?? f}" is not a list of messages`;
        row[f] = v as Message[];
      } else if (typeof v === 'string' || Array.isArray(v)) row[f] = v as Message[] | string;
      else return `field "${cols[f] ?? f}" is neither text nor a list of messages`;
    }
    const meta = obj.meta;
    if (meta && typeof meta === 'object' && !Array.isArray(meta) && !used.has('meta')) {
      Object.assign(row.meta, meta);
      used.add('meta');
    }
    for (const [k, v] of Object.entries(obj)) if (!used.has(k)) row.meta[k] = plain(v);
    return row;
  }

  async *lines(): AsyncGenerator<DecodedLine> {
    const { encoding, stream } = await sniff(openBytes(this.abs), this.opts.encoding ?? 'auto');
    this.encoding = encoding;
    this.opts.onFile?.({ file: this.shown, format: this.format, encoding });
    yield* decodeLines(stream, encoding, this.opts.maxLineBytes);
  }

  encoding: Encoding | 'binary' = 'utf8';
  format: InputFormat = 'jsonl';
}

/** BigInt (Parquet INT64) and Dates are made JSON-safe; everything else passes through. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x);
    return o;
  }
  return v;
}

function lineProblem(l: DecodedLine, enc: Encoding | 'binary'): string {
  return l.tooLong ? 'line too long (over the line-size limit)' : `undecodable bytes (not valid ${enc})`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function* readJsonl(r: FileReader, lines: AsyncIterable<DecodedLine>): AsyncGenerator<IngestItem> {
  for await (const l of lines) {
    if (!l.ok) {
      yield r.malformed(l.line, lineProblem(l, r.encoding), l.text);
      continue;
    }
    if (l.text.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(l.text);
    } catch (e) {
      yield r.malformed(l.line, `invalid JSON: ${(e as Error).message}`, l.text);
      continue;
    }
    if (!isObject(v)) {
      yield r.malformed(l.line, 'expected a JSON object per line', l.text);
      continue;
    }
    const row = r.toRow(v, l.line, false);
    yield typeof row === 'string' ? r.malformed(l.line, row, l.text) : row;
  }
}

/** Reads a whole decoded file, yielding malformed records for undecodable lines and returning the good text. */
async function* wholeText(r: FileReader, lines: AsyncIterable<DecodedLine>): AsyncGenerator<IngestItem, string> {
  const limit = r.opts.maxJsonBytes ?? 256 * 1024 * 1024;
  const size = statSync(r.abs).size;
  if (size > limit) {
    throw new LoomError('INPUT_FORMAT', `${r.shown} is ${size} bytes, above the ${limit}-byte limit for ${r.format}`, {
      file: r.shown,
      hint: 'convert it to JSONL (one record per line) so it can be streamed, or raise maxJsonBytes',
    });
  }
  const parts: string[] = [];
  for await (const l of lines) {
    if (!l.ok) {
      yield r.malformed(l.line, lineProblem(l, r.encoding), l.text);
      parts.push('');
    } else parts.push(l.text);
  }
  return parts.join('\n');
}

/**
 * Top-level elements of a (possibly broken) JSON array: string- and bracket-aware split at depth-1 commas.
 * An unterminated tail becomes the last element, so nothing is dropped silently.
 */
function splitJsonArray(text: string): { start: number; end: number; line: number }[] {
  const out: { start: number; end: number; line: number }[] = [];
  let i = text.indexOf('[');
  if (i < 0) return out;
  let line = 1;
  for (let k = 0; k < i; k++) if (text.charCodeAt(k) === 10) line++;
  let depth = 1;
  let inStr = false;
  let start = -1;
  let startLine = line;
  const close = (end: number): void => {
    if (start >= 0 && text.slice(start, end).trim() !== '') out.push({ start, end, line: startLine });
    start = -1;
  };
  for (i = i + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') line++;
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (start < 0 && !/\s/.test(c) && !(depth === 1 && (c === ',' || c === ']'))) {
      start = i;
      startLine = line;
    }
    if (c === '"') inStr = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) {
        close(i);
        return out;
      }
    } else if (c === ',' && depth === 1) close(i);
  }
  close(text.length);
  return out;
}

async function* readJson(r: FileReader, lines: AsyncIterable<DecodedLine>): AsyncGenerator<IngestItem> {
  const text = yield* wholeText(r, lines);
  const trimmed = text.trimStart();
  if (trimmed === '') return;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    if (!trimmed.startsWith('[')) {
      // Not one JSON value: treat as JSONL that was named .json.
      yield* readJsonl(
        r,
        (async function* () {
          let i = 0;
          for (const t of text.split('\n')) yield { line: ++i, text: t, ok: true };
        })(),
      );
      return;
    }
    // Salvage the good elements: split the array at top-level commas and parse each element alone.
    const parts = splitJsonArray(text);
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const src = text.slice(p.start, p.end);
      let item: unknown;
      try {
        item = JSON.parse(src);
      } catch (err) {
        yield r.malformed(
          i + 1,
          `invalid JSON in array element ${i + 1} (line ${p.line}): ${(err as Error).message}`,
          src,
        );
        continue;
      }
      if (!isObject(item)) {
        yield r.malformed(i + 1, 'expected a JSON object as array element', src);
        continue;
      }
      const row = r.toRow(item, i + 1, false);
      yield typeof row === 'string' ? r.malformed(i + 1, row, src) : row;
    }
    if (parts.length === 0) yield r.malformed(1, `invalid JSON: ${(e as Error).message}`, text.slice(0, RAW_CAP));
    return;
  }
  const items = Array.isArray(v) ? v : [v];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (!isObject(item)) {
      yield r.malformed(i + 1, 'expected a JSON object as array element', JSON.stringify(item) ?? String(item));
      continue;
    }
    const row = r.toRow(item, i + 1, false);
    yield typeof row === 'string' ? r.malformed(i + 1, row, JSON.stringify(item)) : row;
  }
}

interface CsvRecord {
  record: Record<string, string>;
  info: { lines: number };
  raw: string;
}

function countNl(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

/**
 * A csv-parse error in words. Its messages quote the offending character from a byte buffer, which shows one
 * byte of a multi-byte character as Latin-1 (`got "é"` for 银); the codes below get a plain sentence instead.
 */
export function csvProblem(err: Error & { code?: string; lines?: number }): string {
  switch (err.code) {
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'a quote inside a quoted field is not doubled (write "" for a literal quote)';
    case 'CSV_QUOTE_NOT_CLOSED':
      return `a quoted field opened here is never closed (the record runs to line ${err.lines ?? '?'}, the end of the file)`;
    case 'CSV_INVALID_OPENING_QUOTE':
      return 'a quote in the middle of an unquoted field (quote the whole field and double inner quotes)';
    default:
      return err.message.replace(/got "[^"\x00-\x7f]*" /g, '');
  }
}

async function* readCsv(r: FileReader, lines: AsyncIterable<DecodedLine>): AsyncGenerator<IngestItem> {
  const bad = new Set<number>();
  // Recent lines, so a skipped record's raw text can be given whole (csv-parse's raw stops at the error).
  const recent = new Map<number, string>();
  let header: string[] | undefined;
  const source = Readable.from(
    (async function* () {
      // Batches of lines: one stream chunk per line would dominate the cost of parsing.
      let batch: string[] = [];
      let size = 0;
      for await (const l of lines) {
        if (!l.ok) bad.add(l.line);
        recent.set(l.line, l.text);
        if (recent.size > RECENT) recent.delete(l.line - RECENT);
        batch.push(l.text);
        size += l.text.length;
        if (batch.length >= 1024 || size >= 65536) {
          yield `${batch.join('\n')}\n`;
          batch = [];
          size = 0;
        }
      }
      if (batch.length) yield `${batch.join('\n')}\n`;
    })(),
  );
  const parser = parseCsv({
    delimiter: r.opts.delimiter ?? (r.format === 'tsv' ? '\t' : ','),
    columns: (h: string[]) => {
      header = h.map((c) => c.trim());
      const cols = r.opts.columns ?? {};
      for (const [field, col] of Object.entries(cols)) {
        if (col && !header.includes(col)) {
          throw new LoomError('INPUT_FORMAT', `column "${col}" (mapped to ${field}) is not in the CSV header`, {
            file: r.shown,
            line: 1,
            hint: `the header has: ${header.join(', ')}`,
          });
        }
      }
      return header;
    },
    info: true,
    raw: true,
    bom: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    // TSV exports rarely quote; a quote inside a field is then just a character.
    relax_quotes: r.format === 'tsv',
  });
  const skipped: MalformedRecord[] = [];
  // csv-parse resumes inside a broken record and may report it again (a second stray quote, then "quote not
  // closed" at the end): errors that start within the last reported record extend it instead of adding records.
  let lastBad: { line: number; end: number; rec?: MalformedRecord } = { line: 0, end: 0 };
  const wholeRaw = (line: number, end: number, fallback: string) => {
    const whole: string[] = [];
    for (let i = line; i <= end && recent.has(i); i++) whole.push(recent.get(i)!);
    return whole.length === end - line + 1 ? whole.join('\n') : fallback;
  };
  parser.on('skip', (err: Error & { code?: string; lines?: number; raw?: string }) => {
    const end = err.lines ?? 1;
    const line = Math.max(1, end - countNl((err.raw ?? '').replace(/\n$/, '')));
    if (line <= lastBad.end) {
      if (end > lastBad.end && lastBad.rec) {
        lastBad.end = end;
        lastBad.rec.raw = wholeRaw(lastBad.line, end, lastBad.rec.raw).slice(0, RAW_CAP);
      }
      return;
    }
    try {
      const rec = r.malformed(line, `bad CSV: ${csvProblem(err)}`, wholeRaw(line, end, err.raw ?? ''));
      skipped.push(rec);
      lastBad = { line, end, rec };
    } catch (e) {
      parser.destroy(e as Error);
    }
  });
  source.on('error', (e) => parser.destroy(e));
  source.pipe(parser);
  for await (const rec of parser as AsyncIterable<CsvRecord>) {
    const nl = countNl(rec.raw.replace(/\r?\n$/, ''));
    const last = rec.info.lines;
    const first = last - nl;
    while (skipped.length && skipped[0]!.line < first) yield skipped.shift()!;
    let undecodable = false;
    for (let i = first; i <= last; i++) if (bad.has(i)) undecodable = true;
    if (undecodable) {
      yield r.malformed(first, `undecodable bytes (not valid ${r.encoding})`, rec.raw);
      continue;
    }
    const row = r.toRow(rec.record, first, true);
    yield typeof row === 'string' ? r.malformed(first, row, rec.raw) : row;
  }
  while (skipped.length) yield skipped.shift()!;
}

async function* readTxt(r: FileReader, lines: AsyncIterable<DecodedLine>): AsyncGenerator<IngestItem> {
  const block = r.opts.txtMode === 'block';
  let buf: string[] = [];
  let start = 0;
  let badLine = 0;
  const flush = (): IngestItem | undefined => {
    if (!buf.length) return undefined;
    const text = buf.join('\n');
    const item: IngestItem =
      badLine > 0
        ? r.malformed(start, `undecodable bytes at line ${badLine} (not valid ${r.encoding})`, text)
        : (r.toRow({ text }, start, false) as DataRow);
    buf = [];
    badLine = 0;
    return item;
  };
  for await (const l of lines) {
    if (!block) {
      if (!l.ok) yield r.malformed(l.line, lineProblem(l, r.encoding), l.text);
      else if (l.text.trim() !== '') yield r.toRow({ text: l.text }, l.line, false) as DataRow;
      continue;
    }
    if (l.text.trim() === '' && l.ok) {
      const item = flush();
      if (item) yield item;
      continue;
    }
    if (!buf.length) start = l.line;
    if (!l.ok && !badLine) badLine = l.line;
    buf.push(l.text);
  }
  const item = flush();
  if (item) yield item;
}

async function* readMarkup(r: FileReader, lines: AsyncIterable<DecodedLine>): AsyncGenerator<IngestItem> {
  const text = yield* wholeText(r, lines);
  const out = r.format === 'html' ? htmlToText(text) : markdownToText(text);
  if (out.trim() !== '') yield r.toRow({ text: out }, 1, false) as DataRow;
}

async function* readParquet(r: FileReader): AsyncGenerator<IngestItem> {
  if (/\.(gz|zst)$/i.test(r.abs)) {
    throw new LoomError('INPUT_FORMAT', 'compressed Parquet files (.parquet.gz/.zst) are not supported', {
      file: r.shown,
      hint: 'Parquet compresses internally; decompress the outer file first',
    });
  }
  r.encoding = 'binary';
  r.opts.onFile?.({ file: r.shown, format: 'parquet', encoding: 'binary' });
  let file: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let total: number;
  try {
    file = await asyncBufferFromFile(r.abs);
    total = Number((await parquetMetadataAsync(file)).num_rows);
  } catch (e) {
    yield r.malformed(1, `unreadable Parquet file: ${(e as Error).message}`, '');
    return;
  }
  const batch = r.opts.parquetBatch ?? 8192;
  for (let start = 0; start < total; start += batch) {
    let rows: Record<string, unknown>[];
    try {
      rows = (await parquetReadObjects({ file, rowStart: start, rowEnd: Math.min(total, start + batch) })) as Record<
        string,
        unknown
      >[];
    } catch (e) {
      yield r.malformed(start + 1, `unreadable Parquet rows ${start + 1}..: ${(e as Error).message}`, '');
      return;
    }
    for (let i = 0; i < rows.length; i++) {
      const row = r.toRow(rows[i]!, start + i + 1, false);
      yield typeof row === 'string' ? r.malformed(start + i + 1, row, JSON.stringify(plain(rows[i]))) : row;
    }
  }
}

/** Reads one file (absolute path); `shown` is the path used in ids, sources and messages. */
export async function* readFile(abs: string, shown: string, opts: ReadOptions = {}): AsyncGenerator<IngestItem> {
  const fmt = opts.format && opts.format !== 'auto' ? opts.format : formatOf(abs);
  if (!fmt) {
    throw new LoomError('INPUT_FORMAT', `cannot tell the format of ${shown} from its extension`, {
      file: shown,
      hint: 'use one of .jsonl .json .csv .tsv .parquet .txt .md .html (optionally .gz/.zst), or set format',
    });
  }
  const r = new FileReader(abs, shown, opts);
  r.format = fmt;
  if (fmt === 'parquet') {
    yield* readParquet(r);
    return;
  }
  let lastLine = 0;
  const lines = (async function* () {
    for await (const l of r.lines()) {
      lastLine = l.line;
      yield l;
    }
  })();
  try {
    if (fmt === 'jsonl') yield* readJsonl(r, lines);
    else if (fmt === 'json') yield* readJson(r, lines);
    else if (fmt === 'csv' || fmt === 'tsv') yield* readCsv(r, lines);
    else if (fmt === 'txt') yield* readTxt(r, lines);
    else yield* readMarkup(r, lines);
  } catch (e) {
    if (e instanceof LoomError) throw e;
    // Stream-level failures (corrupt gzip/zstd, read errors) end this file but not the job.
    const err = e as Error & { code?: string };
    yield r.malformed(lastLine + 1, `unreadable input: ${err.message}`, '');
  }
}

/** Read options from the `ingest` config section (src/config/data-clean.ts). */
export function ingestOptions(cfg: IngestConfig, extra: Partial<ReadOptions> = {}): ReadOptions {
  return {
    format: cfg.format,
    encoding: cfg.encoding,
    txtMode: cfg.txt_mode,
    columns: cfg.columns,
    delimiter: cfg.delimiter,
    maxJsonBytes: cfg.max_whole_file_mb * 1024 * 1024,
    ...extra,
  };
}

/** Shown path of a file: relative to baseDir with `/` separators (absolute if outside it). */
export function shownPath(abs: string, baseDir: string): string {
  const rel = relative(baseDir, abs);
  return rel.startsWith('..') ? abs.split(sep).join('/') : rel.split(sep).join('/');
}

/** Streams rows and malformed records from every file the patterns match, in order. */
export async function* readInputs(patterns: readonly string[], opts: ReadOptions = {}): AsyncGenerator<IngestItem> {
  const base = resolve(opts.baseDir ?? process.cwd());
  const files = opts.files ?? expandInputs(patterns, { baseDir: base });
  for (const abs of files) yield* readFile(abs, shownPath(abs, base), opts);
}
