import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { AtomicWriter } from '../../core/atomic.ts';
import { LoomError } from '../../core/errors.ts';
import type { DataRow } from '../../core/types.ts';
import { exportRow, type FormatName, type FormatOptions } from './index.ts';

/**
 * Small JSON/JSONL record reader for the format tools (convert, lint, registry files). It keeps every line
 * number, and turns unparsable lines into `{error}` items instead of throwing, so callers can report them.
 * (The pipeline's general ingest—CSV, Parquet, encodings, compression—lives in src/data/ingest.)
 */
export type RawRecord = { line: number; value: unknown; raw: string } | { line: number; error: string; raw: string };

export function assertInputFile(path: string): void {
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new LoomError('INPUT_NOT_FOUND', `input file not found: ${path}`, {
      file: path,
      hint: 'check the path (relative paths resolve against the current folder)',
    });
  }
}

export async function* readJsonRecords(path: string): AsyncGenerator<RawRecord> {
  assertInputFile(path);
  if (/\.json$/i.test(path)) {
    yield* readJsonArray(path);
    return;
  }
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (let text of rl) {
    line++;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') continue;
    try {
      yield { line, value: JSON.parse(text), raw: text };
    } catch (e) {
      yield { line, error: `invalid JSON: ${(e as Error).message}`, raw: text };
    }
  }
}

/** A .json file holds an array of records (or one record); each element gets the line it starts on. */
function* readJsonArray(path: string): Generator<RawRecord> {
  let text = readFileSync(path, 'utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // A .json file that is really JSON lines is common; fall back to reading it line by line.
    const lines = text.split(/\r?\n/);
    if (lines.filter((l) => l.trim()).length > 1 && lines[0]?.trim().startsWith('{')) {
      for (let i = 0; i < lines.length; i++) {
        const l = lines[i]!;
        if (!l.trim()) continue;
        try {
          yield { line: i + 1, value: JSON.parse(l), raw: l };
        } catch (err) {
          yield { line: i + 1, error: `invalid JSON: ${(err as Error).message}`, raw: l };
        }
      }
      return;
    }
    yield { line: 1, error: `invalid JSON file: ${(e as Error).message}`, raw: text.slice(0, 200) };
    return;
  }
  if (!Array.isArray(parsed)) {
    yield { line: 1, value: parsed, raw: '' };
    return;
  }
  const starts = topLevelElementLines(text);
  for (let i = 0; i < parsed.length; i++) {
    yield { line: starts[i] ?? i + 1, value: parsed[i], raw: '' };
  }
}

/** Line numbers where each element of a top-level JSON array starts (a tiny scanner, strings aware). */
export function topLevelElementLines(text: string): number[] {
  const out: number[] = [];
  let depth = 0;
  let line = 1;
  let inStr = false;
  let expectValue = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\n') line++;
    if (inStr) {
      if (ch === '\\') i++;
      else if (ch === '"') inStr = false;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') continue;
    if (depth === 1 && expectValue && ch !== ']') {
      out.push(line);
      expectValue = false;
    }
    if (ch === '"') inStr = true;
    else if (ch === '[' || ch === '{') {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (ch === ']' || ch === '}') depth--;
    else if (ch === ',' && depth === 1) expectValue = true;
  }
  return out;
}

/** Writes rows in a format as JSONL, atomically. Returns rows written and the per-row export errors. */
export async function writeRows(
  path: string,
  rows: AsyncIterable<DataRow> | Iterable<DataRow>,
  format: FormatName,
  opts: FormatOptions = {},
  onError?: (row: DataRow, e: LoomError) => void,
): Promise<number> {
  const w = new AtomicWriter(path);
  let n = 0;
  try {
    for await (const row of rows) {
      let obj: Record<string, unknown>;
      try {
        obj = exportRow(row, format, opts);
      } catch (e) {
        if (e instanceof LoomError && onError) {
          onError(row, e);
          continue;
        }
        throw e;
      }
      await w.write(`${JSON.stringify(obj)}\n`);
      n++;
    }
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return n;
}
