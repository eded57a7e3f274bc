/**
 * Bytes → lines for every text input: decompression (`.gz` via zlib, `.zst` via fzstd, streamed), encoding
 * detection and conversion, and a byte-level line splitter so memory stays bounded by the longest line.
 *
 * Encoding detection (`encoding: auto`) is src/core/encoding.ts (shared with the eval stage), on the first 64 KiB.
 * Lines that do not decode under the chosen encoding come out with `ok: false` and a lossy text, so the reader
 * can report them as malformed (`undecodable bytes`) with their 1-based line number.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import iconv from 'iconv-lite';
import { detectEncoding, ENCODING_SAMPLE_BYTES, type Encoding } from '../../core/encoding.ts';

export { detectEncoding, type Encoding };
export type EncodingOption = 'auto' | Encoding;

/** The file name without a trailing `.gz` / `.zst`, used to pick the format. */
export function innerName(file: string): string {
  return file.replace(/\.(gz|zst)$/i, '');
}

async function* zstdChunks(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const out: Buffer[] = [];
  const dec = new Decompress((data) => {
    out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  for await (const chunk of src) {
    dec.push(chunk);
    while (out.length) yield out.shift()!;
  }
  dec.push(new Uint8Array(0), true);
  while (out.length) yield out.shift()!;
}

/** Decompressed byte chunks of a file (by extension). */
export function openBytes(file: string): AsyncIterable<Buffer> {
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  if (/\.gz$/i.test(file)) return raw.pipe(createGunzip());
  if (/\.zst$/i.test(file)) return zstdChunks(raw);
  return raw;
}

const SAMPLE = ENCODING_SAMPLE_BYTES;
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

export interface DecodedLine {
  /** 1-based line number in the (decompressed) file. */
  line: number;
  text: string;
  /** False when the line's bytes are not valid in the file's encoding (text is then a lossy decode). */
  ok: boolean;
  /** Set when the line was longer than the limit: only its first 64 KiB are kept, and `ok` is false. */
  tooLong?: boolean;
}

/** Lines longer than this are not assembled in memory (reported as malformed instead). */
const MAX_LINE_BYTES = 256 * 1024 * 1024;

function decodeLineBytes(bytes: Buffer, enc: Encoding): { text: string; ok: boolean } {
  if (enc === 'gb18030') {
    const text = iconv.decode(bytes, 'gb18030');
    return { text, ok: !text.includes('\uFFFD') };
  }
  try {
    return { text: utf8Fatal.decode(bytes), ok: true };
  } catch {
    return { text: bytes.toString('utf8'), ok: false };
  }
}

/** Buffers the first 64 KiB of a byte stream to detect its encoding, then hands back the whole stream. */
export async function sniff(
  chunks: AsyncIterable<Buffer>,
  enc: EncodingOption,
): Promise<{ encoding: Encoding; stream: AsyncIterable<Buffer> }> {
  const it = chunks[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  let done = false;
  while (size < SAMPLE) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head.push(r.value);
    size += r.value.length;
  }
  const sample = Buffer.concat(head);
  let encoding: Encoding;
  if (enc === 'auto') encoding = detectEncoding(sample, done);
  else if (enc === 'utf8' && sample[0] === 0xef && sample[1] === 0xbb && sample[2] === 0xbf) encoding = 'utf8-bom';
  else encoding = enc;
  async function* replay(): AsyncGenerator<Buffer> {
    if (sample.length) yield sample;
    if (done) return;
    while (true) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return { encoding, stream: replay() };
}

/** Splits a byte stream into decoded lines (LF or CRLF). The final line is emitted only when non-empty. */
export async function* decodeLines(
  chunks: AsyncIterable<Buffer>,
  encoding: Encoding,
  maxLineBytes = MAX_LINE_BYTES,
): AsyncGenerator<DecodedLine> {
  let lineNo = 0;
  if (encoding === 'utf16le' || encoding === 'utf16be') {
    // UTF-16 cannot be split on byte 0x0A, so decode the stream first (non-fatal) and split the text.
    const dec = new TextDecoder(encoding === 'utf16le' ? 'utf-16le' : 'utf-16be', { ignoreBOM: false });
    let carry = '';
    const emit = function* (text: string, final: boolean): Generator<DecodedLine> {
      const parts = (carry + text).split('\n');
      carry = final ? '' : parts.pop()!;
      for (let i = 0; i < parts.length; i++) {
        const t = parts[i]!.endsWith('\r') ? parts[i]!.slice(0, -1) : parts[i]!;
        if (final && i === parts.length - 1 && t === '') continue;
        lineNo++;
        yield { line: lineNo, text: t, ok: !t.includes('\uFFFD') };
      }
    };
    for await (const chunk of chunks) yield* emit(dec.decode(chunk, { stream: true }), false);
    yield* emit(dec.decode(), true);
    return;
  }
  let pending: Buffer[] = [];
  let first = true;
  const finishLine = (bytes: Buffer): DecodedLine => {
    let b = bytes;
    if (b.length && b[b.length - 1] === 13) b = b.subarray(0, b.length - 1);
    if (first) {
      first = false;
      if (encoding === 'utf8-bom' && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
    }
    lineNo++;
    const d = decodeLineBytes(b, encoding);
    return { line: lineNo, text: d.text, ok: d.ok };
  };
  let pendingSize = 0;
  let overflow = false;
  const tooLong = (tail: Buffer): DecodedLine => {
    pending.push(tail);
    const head = Buffer.concat(pending).subarray(0, 64 * 1024);
    pending = [];
    pendingSize = 0;
    overflow = false;
    first = false;
    lineNo++;
    return { line: lineNo, text: decodeLineBytes(head, encoding).text, ok: false, tooLong: true };
  };
  for await (const chunk of chunks) {
    let start = 0;
    let nl = chunk.indexOf(10, start);
    while (nl >= 0) {
      if (overflow || pendingSize + nl - start > maxLineBytes)
        yield tooLong(chunk.subarray(start, Math.min(nl, start + 65536)));
      else {
        let bytes = chunk.subarray(start, nl);
        if (pending.length) {
          pending.push(bytes);
          bytes = Buffer.concat(pending);
          pending = [];
          pendingSize = 0;
        }
        yield finishLine(bytes);
      }
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length && !overflow) {
      pending.push(chunk.subarray(start));
      pendingSize += chunk.length - start;
      // Keep only the head of an over-long line; the rest is skipped up to the next newline.
      if (pendingSize > maxLineBytes) {
        overflow = true;
        pending = [Buffer.from(Buffer.concat(pending).subarray(0, 64 * 1024))];
        pendingSize = pending[0]!.length;
      }
    }
  }
  if (overflow) {
    yield tooLong(Buffer.alloc(0));
    return;
  }
  if (pending.length) {
    const last = Buffer.concat(pending);
    if (last.length) yield finishLine(last);
  }
}
