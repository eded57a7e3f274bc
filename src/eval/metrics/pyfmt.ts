/**
 * Python-compatible text primitives. sacrebleu and rouge-score are Python programs; to reproduce their output
 * byte for byte we need Python's `str.split()` whitespace set, `str.rstrip()`, code-point indexing and
 * `'%.Nf'` formatting (exact decimal value of the double, ties to even).
 */

/** Characters for which Python's `str.isspace()` is true (differs from JS `\s`: adds \x1c-\x1f, \x85; drops \ufeff). */
const PY_WS_CLASS = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_WS_RUN_G = new RegExp(`[${PY_WS_CLASS}]+`, 'g');
const PY_WS_ONE = new RegExp(`[${PY_WS_CLASS}]`);

/** Python `str.isspace()` for one UTF-16 code unit (every Python whitespace character is in the BMP). */
function isPyWsCode(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13) || (c >= 28 && c <= 31);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Python `s.split()` (no argument): split on whitespace runs, drop empty strings. */
export function pySplit(s: string): string[] {
  const out: string[] = [];
  let start = -1;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    if (isPyWsCode(s.charCodeAt(i))) {
      if (start >= 0) {
        out.push(s.slice(start, i));
        start = -1;
      }
    } else if (start < 0) start = i;
  }
  if (start >= 0) out.push(start === 0 ? s : s.slice(start));
  return out;
}

/** Python `' '.join(s.split())`. */
export function pyNormalizeSpaces(s: string): string {
  return s.replace(PY_WS_RUN_G, ' ').replace(/^ /, '').replace(/ $/, '');
}

/** Python `''.join(s.split())`. */
export function pyRemoveSpaces(s: string): string {
  return s.replace(PY_WS_RUN_G, '');
}

export function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && isPyWsCode(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isPyWsCode(s.charCodeAt(start))) start++;
  while (end > start && isPyWsCode(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

export function pyIsSpace(ch: string): boolean {
  return ch.length > 0 && PY_WS_ONE.test(ch);
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** Splits into code points (Python string indexing); fast path for strings without surrogates. */
export function codePoints(s: string): string[] {
  return SURROGATE.test(s) ? Array.from(s) : s.split('');
}

export function hasSurrogates(s: string): boolean {
  return SURROGATE.test(s);
}

/**
 * Python `f'{x:.{digits}f}'`. V8's toFixed already uses the exact decimal value of the double; it differs from
 * Python only on exact ties (Python: half to even, JS: half up) and on negative zero.
 */
export function pyFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const neg = x < 0 || Object.is(x, -0);
  const ax = Math.abs(x);
  let s: string;
  if (ax >= 1e21) {
    s = BigInt(Math.round(ax)).toString() + (digits > 0 ? `.${'0'.repeat(digits)}` : '');
  } else {
    s = ax.toFixed(digits);
    // A tie needs ax * 10^(d+1) to end in 5 exactly, which implies at most d+1 fractional bits.
    const scaled = ax * 2 ** (digits + 1);
    if (Number.isInteger(scaled) && digits < 99) {
      const longer = ax.toFixed(digits + 1);
      if (longer.endsWith('5')) {
        // Exact tie: toFixed rounded up; Python rounds to even.
        const truncated = longer.slice(0, -1).replace(/\.$/, '');
        const lastDigit = Number(truncated[truncated.length - 1]);
        if (lastDigit % 2 === 0) s = truncated;
      }
    }
  }
  return neg ? `-${s}` : s;
}

/** Python 3 `round(x, digits)` for doubles: half to even on the exact binary value. */
export function pyRound(x: number, digits = 0): number {
  return Number(pyFixed(x, digits));
}
