/**
 * Size cap for one rejects.jsonl record. A rejected row can be huge (a 50 MB line of minified JSON, a scraped page
 * pasted into one cell); copying it whole makes rejects.jsonl as large as the input and slow to open. Over the cap,
 * `row` (and `detail`, when it alone is over a quarter of the cap) is replaced by a stub that keeps what is needed to
 * find and verify the original: its UTF-8 size, the SHA-256 of its JSON text as it would have been logged, and the
 * first `REJECT_HEAD_CHARS` characters of that JSON. `source` (file:line) is always kept, so the row can be found.
 */
import { createHash } from 'node:crypto';
import type { RejectRecord } from '../core/types.ts';

/** Records whose JSON is over this many UTF-8 bytes are truncated. */
export const REJECT_MAX_BYTES = 1024 * 1024;
export const REJECT_HEAD_CHARS = 4096;

export interface TruncatedValue {
  truncated: true;
  bytes: number;
  sha256: string;
  head: string;
}

function stub(json: string): TruncatedValue {
  return {
    truncated: true,
    bytes: Buffer.byteLength(json, 'utf8'),
    sha256: createHash('sha256').update(json, 'utf8').digest('hex'),
    head: json.slice(0, REJECT_HEAD_CHARS),
  };
}

/** The JSON line for a reject (without the newline), truncated as described above when it is over `maxBytes`. */
export function rejectLine(rec: RejectRecord, maxBytes = REJECT_MAX_BYTES): { line: string; record: RejectRecord } {
  const line = JSON.stringify(rec);
  // UTF-16 length ≤ UTF-8 bytes ≤ 3 × length: skip the byte count for the common small record.
  if (line.length * 3 <= maxBytes || Buffer.byteLength(line, 'utf8') <= maxBytes) return { line, record: rec };
  const out: RejectRecord = { ...rec, row: stub(JSON.stringify(rec.row) ?? 'null') };
  if (rec.detail) {
    const d = JSON.stringify(rec.detail);
    if (Buffer.byteLength(d, 'utf8') > maxBytes / 4) out.detail = { ...stub(d) };
  }
  return { line: JSON.stringify(out), record: out };
}
