/**
 * Shared text measurements for the quality rules: a word tokenizer shaped like NLTK's for Latin text (letter /
 * digit runs with inner apostrophes are words; each run of other non-space characters is one symbol token),
 * a character tokenizer for Chinese (every non-whitespace character is a token), and n-gram repetition
 * measures computed with two 32-bit rolling hashes of token ids per n-gram (O(1) per position, no substrings; 64
 * bits together make a false match between two different n-grams of one document vanishingly unlikely).
 * Character tokens carry code points as ids and no strings, so the Chinese rules allocate two typed arrays per
 * document and nothing per n-gram.
 */

export interface Tokens {
  /** Dense id per distinct token (code point for characters). */
  ids: Int32Array;
  /** Length of each token in UTF-16 code units. */
  lens: Int32Array;
}

export interface WordTokens extends Tokens {
  /** Token strings: words and symbol runs. */
  list: string[];
}

const WORD_RE = /[\p{L}\p{N}\p{M}]+(?:['’][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}\p{M}]+/gu;
const WORDISH = /[\p{L}\p{N}]/u;
const ALPHA = /\p{L}/u;

function withIds(list: string[]): WordTokens {
  const ids = new Int32Array(list.length);
  const lens = new Int32Array(list.length);
  const dict = new Map<string, number>();
  for (let i = 0; i < list.length; i++) {
    const t = list[i]!;
    let id = dict.get(t);
    if (id === undefined) {
      id = dict.size;
      dict.set(t, id);
    }
    ids[i] = id;
    lens[i] = t.length;
  }
  return { list, ids, lens };
}

export function wordTokens(text: string): WordTokens {
  return withIds(text.match(WORD_RE) ?? []);
}

/** Every non-whitespace character is a token (id = code point). */
export function charTokens(text: string): Tokens {
  const ids = new Int32Array(text.length);
  const lens = new Int32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    let len = 1;
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) {
      cp = text.codePointAt(i)!;
      len = 2;
      i++;
    }
    if (cp <= 32 || cp === 0x3000 || cp === 0xa0 || (cp >= 0x2000 && cp <= 0x200a)) continue;
    ids[n] = cp;
    lens[n] = len;
    n++;
  }
  return { ids: ids.subarray(0, n), lens: lens.subarray(0, n) };
}

export function isWordish(token: string): boolean {
  return WORDISH.test(token);
}

export function hasAlpha(token: string): boolean {
  return ALPHA.test(token);
}

/**
 * Open-addressing table keyed by two independent 32-bit rolling hashes of an n-gram (64 bits together, so a
 * false match between two different n-grams of one document is negligible). Reused between calls.
 */
class GramTable {
  private a = new Int32Array(0);
  private b = new Int32Array(0);
  private c = new Int32Array(0);
  private mask = 0;

  reset(n: number): void {
    let cap = 16;
    while (cap < n * 2) cap <<= 1;
    if (cap > this.a.length) {
      this.a = new Int32Array(cap);
      this.b = new Int32Array(cap);
      this.c = new Int32Array(cap);
    } else this.c.fill(0, 0, cap);
    this.mask = cap - 1;
  }

  /** Adds one occurrence (when `add`) and returns the count before it. */
  bump(h1: number, h2: number, add: boolean): number {
    let i = (h1 ^ Math.imul(h2, 0x9e3779b1)) & this.mask;
    while (true) {
      const c = this.c[i]!;
      if (c === 0) {
        if (add) {
          this.a[i] = h1;
          this.b[i] = h2;
          this.c[i] = 1;
        }
        return 0;
      }
      if (this.a[i] === h1 && this.b[i] === h2) {
        if (add) this.c[i] = c + 1;
        return c;
      }
      i = (i + 1) & this.mask;
    }
  }
}

const table = new GramTable();
const B1 = 0x01000193;
const B2 = 0x5bd1e995;

function pow32(base: number, e: number): number {
  let r = 1;
  for (let k = 0; k < e; k++) r = Math.imul(r, base);
  return r;
}

/** Mixed token value so consecutive small ids do not produce correlated rolling hashes. */
function mix(v: number, salt: number): number {
  let x = Math.imul(v ^ salt, 0x85ebca6b);
  x ^= x >>> 13;
  return Math.imul(x, 0xc2b2ae35);
}

/** Rolling-hash state over ids: `init` hashes ids[0..n), `roll(i)` moves the window from start i to i + 1. */
class Roller {
  h1 = 0;
  h2 = 0;
  private readonly p1: number;
  private readonly p2: number;
  constructor(
    private readonly ids: Int32Array,
    private readonly n: number,
  ) {
    this.p1 = pow32(B1, n - 1);
    this.p2 = pow32(B2, n - 1);
    for (let k = 0; k < n; k++) {
      this.h1 = (Math.imul(this.h1, B1) + mix(ids[k]!, 1)) | 0;
      this.h2 = (Math.imul(this.h2, B2) + mix(ids[k]!, 2)) | 0;
    }
  }
  roll(i: number): void {
    const out = this.ids[i]!;
    const inn = this.ids[i + this.n]!;
    this.h1 = (Math.imul(this.h1 - Math.imul(mix(out, 1), this.p1), B1) + mix(inn, 1)) | 0;
    this.h2 = (Math.imul(this.h2 - Math.imul(mix(out, 2), this.p2), B2) + mix(inn, 2)) | 0;
  }
}

/**
 * Characters covered by the most frequent n-gram (count × its length), as in datatrove's `find_top_duplicate`:
 * ties go to the n-gram seen first. `sep` is the length of the separator counted between tokens (1 for words
 * joined by a space, 0 for characters).
 */
export function topNGramChars(tok: Tokens, n: number, sep: number, minCount = 1): number {
  const total = tok.ids.length - n + 1;
  if (total < minCount || total <= 0) return 0;
  table.reset(total);
  let best = 0;
  let r = new Roller(tok.ids, n);
  for (let i = 0; i < total; i++) {
    if (i > 0) r.roll(i - 1);
    const c = table.bump(r.h1, r.h2, true) + 1;
    if (c > best) best = c;
  }
  if (best < minCount) return 0;
  let at = 0;
  r = new Roller(tok.ids, n);
  for (let i = 0; i < total; i++) {
    if (i > 0) r.roll(i - 1);
    if (table.bump(r.h1, r.h2, false) === best) {
      at = i;
      break;
    }
  }
  let len = sep * (n - 1);
  for (let k = at; k < at + n; k++) len += tok.lens[k]!;
  return len * best;
}

/**
 * Characters in duplicated n-grams, counted greedily as datatrove's `find_all_duplicate`: scanning left to right,
 * an n-gram already seen adds the length of its tokens (no separators) and the scan jumps n tokens ahead.
 */
export function dupNGramChars(tok: Tokens, n: number): number {
  const total = tok.ids.length - n + 1;
  if (total <= 0) return 0;
  table.reset(total);
  let repeated = 0;
  let skipTo = 0;
  const r = new Roller(tok.ids, n);
  // The hash rolls over every position; positions inside a skipped span are simply not looked up.
  for (let i = 0; i < total; i++) {
    if (i > 0) r.roll(i - 1);
    if (i < skipTo) continue;
    if (table.bump(r.h1, r.h2, true) > 0) {
      for (let k = i; k < i + n; k++) repeated += tok.lens[k]!;
      skipTo = i + n;
    }
  }
  return repeated;
}

/** Number of duplicate elements (after their first occurrence) and the characters they hold. */
export function duplicates(items: readonly string[]): { count: number; chars: number } {
  const seen = new Set<string>();
  let count = 0;
  let chars = 0;
  for (const x of items) {
    if (seen.has(x)) {
      count++;
      chars += x.length;
    } else seen.add(x);
  }
  return { count, chars };
}

export function countHan(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0xf900 && c <= 0xfaff)) n++;
  }
  return n;
}

export function countNonSpace(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 32 && c !== 0x3000 && c !== 0xa0) n++;
  }
  return n;
}

export function countOf(text: string, needle: string): number {
  let n = 0;
  let i = text.indexOf(needle);
  while (i >= 0) {
    n++;
    i = text.indexOf(needle, i + needle.length);
  }
  return n;
}
