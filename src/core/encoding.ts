/**
 * Text encoding detection shared by every stage that reads user text files (the data stage's streaming reader,
 * `loom eval metric` and eval datasets): one detector, so a GBK export that imports also scores.
 *
 * Detection, on a sample (the first 64 KiB of a file):
 *  1. a BOM decides: EF BB BF → `utf8-bom`, FF FE → `utf16le`, FE FF → `utf16be`;
 *  2. many NUL bytes on odd (even) positions → `utf16le` (`utf16be`) without BOM;
 *  3. strict UTF-8 decoding of the sample's lines: if at least half of the lines that hold non-ASCII bytes
 *     decode, the file is `utf8` (a few corrupt lines in a UTF-8 file stay UTF-8 and are reported as
 *     malformed); otherwise `gb18030` (a superset of GBK and GB2312), decoded with iconv-lite.
 */
import iconv from 'iconv-lite';
import { LoomError } from './errors.ts';

export type Encoding = 'utf8' | 'utf8-bom' | 'utf16le' | 'utf16be' | 'gb18030';

/** Bytes of a file the detector looks at. */
export const ENCODING_SAMPLE_BYTES = 64 * 1024;

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

function isUtf8(bytes: Uint8Array): boolean {
  try {
    utf8Fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Detects the encoding of a sample (the first bytes of a file); `complete` when the sample is the whole file. */
export function detectEncoding(sample: Buffer, complete: boolean): Encoding {
  if (sample.length >= 3 && sample[0] === 0xef && sample[1] === 0xbb && sample[2] === 0xbf) return 'utf8-bom';
  if (sample.length >= 2 && sample[0] === 0xff && sample[1] === 0xfe) return 'utf16le';
  if (sample.length >= 2 && sample[0] === 0xfe && sample[1] === 0xff) return 'utf16be';
  let evenZero = 0;
  let oddZero = 0;
  const n = Math.min(sample.length, 4096) & ~1;
  for (let i = 0; i < n; i += 2) {
    if (sample[i] === 0) evenZero++;
    if (sample[i + 1] === 0) oddZero++;
  }
  if (n > 0 && oddZero > n / 8 && evenZero < n / 64) return 'utf16le';
  if (n > 0 && evenZero > n / 8 && oddZero < n / 64) return 'utf16be';
  // Judge line by line; the last line of an incomplete sample may be cut mid-character, so skip it.
  let start = 0;
  let nonAscii = 0;
  let good = 0;
  while (start < sample.length) {
    let end = sample.indexOf(10, start);
    if (end < 0) {
      if (!complete) break;
      end = sample.length;
    }
    const line = sample.subarray(start, end);
    let ascii = true;
    for (let i = 0; i < line.length; i++) {
      if (line[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      nonAscii++;
      if (isUtf8(line)) good++;
    }
    start = end + 1;
  }
  if (nonAscii === 0 || good * 2 >= nonAscii) return 'utf8';
  return 'gb18030';
}

/** Display name of an encoding in messages. */
export function encodingLabel(e: Encoding): string {
  return { utf8: 'UTF-8', 'utf8-bom': 'UTF-8 (BOM)', utf16le: 'UTF-16LE', utf16be: 'UTF-16BE', gb18030: 'GB18030/GBK' }[
    e
  ];
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** The first line (1-based) of `bytes` that strict UTF-8 rejects, with the offending byte's column (1-based). */
function firstBadUtf8Line(bytes: Buffer): { line: number; column: number; byte: number } {
  let line = 1;
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(10, start);
    if (end < 0) end = bytes.length;
    const l = bytes.subarray(start, end);
    if (!isUtf8(l)) {
      // Narrow to the first byte that cannot start or continue a valid sequence.
      let ok = 0;
      for (let k = 1; k <= l.length; k++) {
        if (isUtf8(l.subarray(0, k))) ok = k;
        else if (k - ok > 4) break;
      }
      return { line, column: ok + 1, byte: l[ok] ?? 0 };
    }
    line++;
    start = end + 1;
  }
  return { line, column: 1, byte: 0 };
}

/**
 * Decodes a whole file's bytes into lines (LF or CRLF; a final newline adds no line) in the detected encoding,
 * strictly: bytes that are not valid in it throw INPUT_ENCODING naming the file and the 1-based line, instead of
 * turning into U+FFFD and being scored or trained on as text.
 */
export function decodeTextStrict(bytes: Buffer, file: string, what = 'file'): { encoding: Encoding; lines: string[] } {
  const encoding = detectEncoding(bytes.subarray(0, ENCODING_SAMPLE_BYTES), bytes.length <= ENCODING_SAMPLE_BYTES);
  const fail = (line: number, detail: string): never => {
    throw new LoomError(
      'INPUT_ENCODING',
      `${what} ${file} line ${line} is not valid ${encodingLabel(encoding)}: ${detail}`,
      {
        file,
        line,
        hint: 'save the file as UTF-8 (e.g. `iconv -f GBK -t UTF-8 in.txt > out.txt`), or fix or drop that line',
      },
    );
  };
  if (encoding === 'utf8' || encoding === 'utf8-bom') {
    const body = encoding === 'utf8-bom' ? bytes.subarray(3) : bytes;
    try {
      return { encoding, lines: splitLines(utf8Fatal.decode(body)) };
    } catch {
      const bad = firstBadUtf8Line(body);
      return fail(bad.line, `byte 0x${bad.byte.toString(16).padStart(2, '0')} at byte column ${bad.column}`);
    }
  }
  if (encoding === 'gb18030') {
    const lines = splitLines(iconv.decode(bytes, 'gb18030'));
    const i = lines.findIndex((l) => l.includes('\uFFFD'));
    if (i >= 0) fail(i + 1, 'undecodable bytes');
    return { encoding, lines };
  }
  const dec = new TextDecoder(encoding === 'utf16le' ? 'utf-16le' : 'utf-16be', { fatal: true });
  try {
    return { encoding, lines: splitLines(dec.decode(bytes)) };
  } catch {
    const lines = splitLines(new TextDecoder(encoding === 'utf16le' ? 'utf-16le' : 'utf-16be').decode(bytes));
    const i = lines.findIndex((l) => l.includes('\uFFFD'));
    return fail(i >= 0 ? i + 1 : lines.length, 'an unpaired surrogate or a cut-off code unit');
  }
}
