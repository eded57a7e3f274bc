/**
 * Tokens and shingles for MinHash, without a segmenter and without regular expressions on the hot path.
 *
 * After lowercasing, the text is cut into tokens: every Han / Kana / Hangul character is one token (CJK), every
 * run of other letters or digits is one token (Latin, Cyrillic, …; digits count as '0' so order numbers and
 * dates do not hide templated duplicates, as in datatrove's simplify_text); punctuation, symbols, emoji and
 * whitespace separate tokens. A shingle is n consecutive tokens: n = `shingleChars` when at least half of the
 * tokens are CJK, otherwise `shingleWords`. Mixed text therefore shingles "退款 refund 申请" as
 * [退, 款, refund, 申, 请]. A text with fewer than n tokens yields one shingle of all its tokens (it can then only
 * match a text with the same tokens); a text with no tokens yields no shingles and is never near-deduped.
 *
 * `shingleHashes(text, opts)` returns the 32-bit shingle hashes in a reused buffer (valid until the next call).
 */
import { fmix32 } from './hash.ts';

export interface ShingleOptions {
  shingleWords: number;
  shingleChars: number;
}

export interface Shingles {
  /** Shingle hashes; a view into a buffer reused by the next call. */
  hashes: Int32Array;
  /** Number of tokens and how many of them were CJK characters. */
  tokens: number;
  cjkTokens: number;
  /** The n that was used. */
  n: number;
}

let tokBuf = new Int32Array(4096);
let shBuf = new Int32Array(4096);

function isCjk(c: number): boolean {
  return (
    (c >= 0x4e00 && c <= 0x9fff) ||
    (c >= 0x3400 && c <= 0x4dbf) ||
    (c >= 0x3040 && c <= 0x30ff) ||
    (c >= 0xac00 && c <= 0xd7af) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0x1100 && c <= 0x11ff) ||
    (c >= 0x3130 && c <= 0x318f)
  );
}

/** Non-ASCII code units that separate tokens: Latin-1 punctuation, general punctuation and symbol blocks,
 *  CJK punctuation, full-width punctuation and specials. Everything else non-ASCII counts as a letter. */
function isSeparator(c: number): boolean {
  return (
    c < 0xc0 ||
    c === 0xd7 ||
    c === 0xf7 ||
    (c >= 0x2000 && c <= 0x2bff) ||
    (c >= 0x3000 && c <= 0x303f) ||
    (c >= 0xfe10 && c <= 0xfe6f) ||
    (c >= 0xff00 && c <= 0xff0f) ||
    (c >= 0xff1a && c <= 0xff20) ||
    (c >= 0xff3b && c <= 0xff40) ||
    (c >= 0xff5b && c <= 0xff65) ||
    c >= 0xfff0
  );
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** Tokenises `lower` (already lowercased) into token hashes in tokBuf; returns [count, cjkCount]. */
function tokenize(lower: string): [number, number] {
  const len = lower.length;
  if (tokBuf.length < len + 1) tokBuf = new Int32Array(Math.max(len + 1, tokBuf.length * 2));
  const buf = tokBuf;
  let n = 0;
  let cjk = 0;
  let h = FNV_OFFSET;
  let inWord = false;
  for (let i = 0; i < len; i++) {
    let c = lower.charCodeAt(i);
    if (c < 0x80) {
      if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57)) {
        if (c <= 57) c = 48;
        if (!inWord) {
          inWord = true;
          h = FNV_OFFSET;
        }
        h = Math.imul(h ^ c, FNV_PRIME);
      } else if (inWord) {
        buf[n++] = fmix32(h);
        inWord = false;
      }
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const lo = lower.charCodeAt(i + 1);
      const cp = ((c - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
      i++;
      // Supplementary planes 2 and 3 hold CJK extension ideographs; the rest (emoji, symbols) separate.
      if (cp >= 0x20000 && cp <= 0x3ffff) {
        if (inWord) {
          buf[n++] = fmix32(h);
          inWord = false;
        }
        buf[n++] = fmix32(cp ^ 0x5bd1e995);
        cjk++;
      } else if (inWord) {
        buf[n++] = fmix32(h);
        inWord = false;
      }
      continue;
    }
    if (isCjk(c)) {
      if (inWord) {
        buf[n++] = fmix32(h);
        inWord = false;
      }
      buf[n++] = fmix32(c ^ 0x5bd1e995);
      cjk++;
    } else if (isSeparator(c)) {
      if (inWord) {
        buf[n++] = fmix32(h);
        inWord = false;
      }
    } else {
      if (!inWord) {
        inWord = true;
        h = FNV_OFFSET;
      }
      h = Math.imul(h ^ c, FNV_PRIME);
    }
  }
  if (inWord) buf[n++] = fmix32(h);
  return [n, cjk];
}

export function shingleHashes(text: string, opts: ShingleOptions): Shingles {
  const [count, cjk] = tokenize(text.toLowerCase());
  const n = cjk * 2 >= count && count > 0 ? opts.shingleChars : opts.shingleWords;
  if (count === 0) return { hashes: shBuf.subarray(0, 0), tokens: 0, cjkTokens: 0, n };
  const width = Math.min(n, count);
  const m = count - width + 1;
  if (shBuf.length < m) shBuf = new Int32Array(Math.max(m, shBuf.length * 2));
  const t = tokBuf;
  const out = shBuf;
  for (let i = 0; i < m; i++) {
    let h = width;
    for (let j = 0; j < width; j++) {
      h = Math.imul(h ^ t[i + j]!, 0x9e3779b1);
      h = (h << 13) | (h >>> 19);
    }
    out[i] = fmix32(h);
  }
  return { hashes: out.subarray(0, m), tokens: count, cjkTokens: cjk, n };
}

/** The tokens themselves (for tests and debugging): CJK characters and letter/digit runs, digits as '0'. */
export function tokensOf(text: string): string[] {
  const out: string[] = [];
  let word = '';
  const flush = () => {
    if (word) out.push(word);
    word = '';
  };
  for (const ch of text.toLowerCase()) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      if ((cp >= 97 && cp <= 122) || (cp >= 48 && cp <= 57)) word += cp <= 57 ? '0' : ch;
      else flush();
    } else if (cp > 0xffff) {
      flush();
      if (cp >= 0x20000 && cp <= 0x3ffff) out.push(ch);
    } else if (isCjk(cp)) {
      flush();
      out.push(ch);
    } else if (isSeparator(cp)) flush();
    else word += ch;
  }
  flush();
  return out;
}
