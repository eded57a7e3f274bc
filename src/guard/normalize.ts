/**
 * Guard normalisation: attackers hide trigger words behind Unicode tricks and encodings, so every check runs on
 * a canonical *view* of the text. `normalizeForGuard(text)` returns the canonical text plus decoded blobs (each is
 * re-scanned by the caller) and the list of transforms that changed something (those are evidence in verdicts).
 *
 * Transforms, in order (each a small exported function with its own test):
 *  - `stripInvisible`: zero-width (U+200B–U+200D, U+2060, U+FEFF, U+00AD) and bidi controls (U+202A–U+202E,
 *    U+2066–U+2069, U+200E/F) removed;
 *  - `nfkc`: Unicode NFKC, which also folds full-width ASCII (ｉｇｎｏｒｅ → ignore) and ideographic space;
 *  - `stripFences`: markdown code fences and inline back-ticks dropped (the words inside stay);
 *  - `foldHomoglyphs`: Cyrillic/Greek letters that look like Latin ones, inside Latin words, mapped to Latin;
 *  - `joinSpaced`: runs of single letters separated by spaces/dots/dashes ("i g n o r e") joined;
 *  - `unmaskKeywords`: a lexicon of trigger words (bomb, explosive, kill, meth, ignore, instructions, …) matched
 *    with per-letter leet classes (8→b, |<→k, ()→o, * for a vowel) and separators inside the word (b.o.m.b,
 *    bo-mb), rewritten to the plain word; it runs before `joinSpaced`, which would otherwise glue a neighbouring
 *    article on ("a b.o.m.b" → "abomb");
 *  - `unleet`: digits/symbols inside Latin words (1gn0r3, @dmin) mapped to letters; once a text holds leet, short
 *    function words (t0, 4 for "a") are decoded too;
 *  - `t2s`: Traditional → Simplified Chinese (opencc-js), so 忽略之前的指令 and 忽略之前的指令 match one rule;
 *  - `decodeBlobs`: base64 (≥ 16 chars, decoding to mostly printable UTF-8), hex (≥ 16 hex digits), percent- and
 *    HTML-entity-encoded text decoded; the decoded strings are returned separately and also normalised.
 * The view is lower-cased for English; Chinese is unaffected by case.
 */
import * as OpenCC from 'opencc-js';

export type TransformName =
  | 'invisible'
  | 'nfkc'
  | 'fences'
  | 'homoglyph'
  | 'spaced'
  | 'leet'
  | 't2s'
  | 'base64'
  | 'hex'
  | 'percent'
  | 'entity';

export interface GuardView {
  /** Canonical text (lower-cased) that rules and similarity see. */
  text: string;
  /** Decoded hidden payloads, each already normalised. */
  decoded: string[];
  /** Transforms that changed the text: evidence of obfuscation. */
  transforms: TransformName[];
}

const INVISIBLE_RE = /[\u200B-\u200D\u2060\uFEFF\u00AD\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

export function stripInvisible(s: string): string {
  return s.replace(INVISIBLE_RE, '');
}

export function nfkc(s: string): string {
  return s.normalize('NFKC');
}

export function stripFences(s: string): string {
  return s.replace(/```[a-zA-Z0-9_-]*\n?/g, ' ').replace(/`([^`\n]*)`/g, '$1');
}

/** Cyrillic and Greek letters that render like Latin ones (confusables.txt subset, lower and upper case). */
const HOMOGLYPHS: Record<string, string> = {
  а: 'a',
  в: 'b',
  е: 'e',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  с: 'c',
  т: 't',
  у: 'y',
  х: 'x',
  і: 'i',
  ј: 'j',
  ѕ: 's',
  ԁ: 'd',
  ɡ: 'g',
  ո: 'n',
  А: 'A',
  В: 'B',
  Е: 'E',
  К: 'K',
  М: 'M',
  Н: 'H',
  О: 'O',
  Р: 'P',
  С: 'C',
  Т: 'T',
  Х: 'X',
  І: 'I',
  Ј: 'J',
  Ѕ: 'S',
  α: 'a',
  ο: 'o',
  ρ: 'p',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  τ: 't',
  υ: 'u',
  χ: 'x',
  ε: 'e',
  Α: 'A',
  Β: 'B',
  Ε: 'E',
  Ζ: 'Z',
  Η: 'H',
  Ι: 'I',
  Κ: 'K',
  Μ: 'M',
  Ν: 'N',
  Ο: 'O',
  Ρ: 'P',
  Τ: 'T',
  Υ: 'Y',
  Χ: 'X',
};
const HOMOGLYPH_RE = new RegExp(`[${Object.keys(HOMOGLYPHS).join('')}]`, 'g');
const HOMOGLYPH_TEST = new RegExp(HOMOGLYPH_RE.source);

/** Maps lookalikes only inside words that also hold a Latin letter, so real Russian/Greek text is left alone. */
export function foldHomoglyphs(s: string): string {
  // Cheap pre-filter: most text holds no lookalike at all, and the per-word callback below is not free.
  if (!HOMOGLYPH_TEST.test(s)) return s;
  return s.replace(/[\p{L}\p{N}]+/gu, (w) =>
    /[a-zA-Z]/.test(w) ? w.replace(HOMOGLYPH_RE, (c) => HOMOGLYPHS[c] ?? c) : w,
  );
}

/** "i g n o r e" / "i.g.n.o.r.e" / "i-g-n-o-r-e" (3+ single letters) → "ignore". */
export function joinSpaced(s: string): string {
  return s.replace(/(?<![A-Za-z])(?:[A-Za-z][ .\-_*]{1,2}){2,}[A-Za-z](?![A-Za-z])/g, (m) =>
    m.replace(/[ .\-_*]/g, ''),
  );
}

const LEET: Record<string, string> = {
  '0': 'o',
  '1': 'i',
  '3': 'e',
  '4': 'a',
  '5': 's',
  '7': 't',
  '@': 'a',
  $: 's',
  '!': 'i',
};

/** Function words that leet hides in short tokens (t0, 4): decoded only in a text that already holds leet. */
const SHORT_WORDS = new Set([
  'a',
  'to',
  'the',
  'of',
  'in',
  'is',
  'it',
  'an',
  'at',
  'on',
  'or',
  'how',
  'for',
  'me',
  'my',
]);

/** Leet inside a Latin word (at least two letters and one substitute, not a pure number): 1gn0r3 → ignore. */
export function unleet(s: string): string {
  let leety = false;
  // Only tokens holding a digit or @$! can change (a word of letters only is returned as it is below).
  if (!/[0-9@$!]/.test(s)) return s;
  const out = s.replace(/(?<![A-Za-z0-9@$!])[A-Za-z0-9@$!]*[0-9@$!][A-Za-z0-9@$!]*/g, (w) => {
    const letters = w.replace(/[^A-Za-z]/g, '').length;
    if (letters < 2 || letters === w.length || /^\d+$/.test(w)) return w;
    // Letters then a number (gpt4, mp3, ps5, win10) is a product or model name, not leet.
    if (/^[A-Za-z]+\d+$/.test(w)) return w;
    // Model names and sizes (gpt4, 128gb, v2) keep their digits: only words mostly made of letters are decoded.
    if (letters < w.length / 2) return w;
    leety = true;
    return w.replace(/[0-9@$!]/g, (c) => LEET[c] ?? c);
  });
  if (!leety) return out;
  // "h0w t0 m4k3 4 b0mb": once the text is known to use leet, "t0" and a lone "4" are words, not numbers. An
  // ordinary "order 4 items" never gets here, since nothing else in it is leet.
  return out.replace(/(?<![A-Za-z0-9@$!])[A-Za-z0-9@$!]{1,3}(?![A-Za-z0-9@$!])/g, (w) => {
    if (!/[0-9@$!]/.test(w)) return w;
    const d = w.replace(/[0-9@$!]/g, (c) => LEET[c] ?? c).toLowerCase();
    return SHORT_WORDS.has(d) ? d : w;
  });
}

/** Leet and lookalike spellings per letter, beyond the one-character LEET map (multi-character forms first). */
const LETTER_FORMS: Record<string, string[]> = {
  a: ['4', '@', '/\\'],
  b: ['8', '|3', '13'],
  c: ['(', '<'],
  e: ['3', '€'],
  g: ['9', '6'],
  i: ['1', '!', '|'],
  k: ['|<', '|{'],
  l: ['1', '|'],
  m: ['|\\/|', '/\\/\\'],
  o: ['0', '()', '[]'],
  s: ['5', '$'],
  t: ['7', '+'],
  u: ['|_|'],
};
const VOWELS = new Set(['a', 'e', 'i', 'o', 'u']);
/** Trigger words of the rule families; the plural/verb endings stay outside the match. */
const KEYWORDS = [
  'bomb',
  'explosive',
  'explosives',
  'detonator',
  'weapon',
  'kill',
  'murder',
  'poison',
  'suicide',
  'meth',
  'cocaine',
  'heroin',
  'fentanyl',
  'ignore',
  'disregard',
  'instructions',
  'prompt',
  'jailbreak',
];

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function keywordPattern(word: string): string {
  // Each letter: itself or one of its forms (a censoring * may stand for a vowel). Between letters: up to two of
  // . - _ (b.o.m.b, bo-mb), or spaces between every letter (b o m b). Spaces are all-or-nothing so that real words
  // in a row ("me th") never join into a keyword.
  const letters = [...word].map((ch) => {
    const forms = [escapeRe(ch), ...(LETTER_FORMS[ch] ?? []).map(escapeRe)];
    if (VOWELS.has(ch)) forms.push('\\*');
    return `(?:${forms.join('|')})`;
  });
  return `(?:${letters.join('[.\\-_]{0,2}')}|${letters.join(' {1,2}')})`;
}

const KEYWORD_RE = new RegExp(`(?<![a-z0-9])(?:${KEYWORDS.map(keywordPattern).join('|')})(?=s?(?![a-z0-9]))`, 'gi');
const KEYWORD_EXACT = KEYWORDS.map((w) => ({ w, re: new RegExp(`^${keywordPattern(w)}$`, 'i') }));

/**
 * Obfuscated trigger words (b.o.m.b, 8omb, b*mb, |<ill, ign0-re) → the plain word. A match must be a whole word
 * (a plural s may follow), so "give me th e box" never becomes "meth".
 */
export function unmaskKeywords(s: string): string {
  return s.replace(KEYWORD_RE, (m) => {
    if (/^[a-z]+$/i.test(m)) return m;
    return KEYWORD_EXACT.find((k) => k.re.test(m))?.w ?? m;
  });
}

let converter: ((s: string) => string) | undefined;
let tradRe: RegExp | undefined;

/**
 * The characters whose presence can make Traditional → Simplified change a text: every key of the character
 * table, plus, for phrase keys made only of characters outside it (反覆 → 反复), the character that the phrase
 * rewrites. A text with none of them comes out of opencc unchanged, so the (costly) conversion is skipped.
 */
function traditionalChars(): RegExp {
  const chars = new Set<string>();
  for (const group of OpenCC.Locale.to.cn ?? []) {
    for (const dict of group) {
      const pairs: (readonly [string, string])[] =
        typeof dict === 'string' ? dict.split('|').map((e) => e.split(' ') as [string, string]) : [...dict];
      for (const [k, v] of pairs) {
        if (!k || !v) continue;
        const ks = [...k];
        if (ks.length === 1) chars.add(ks[0]!);
        else {
          const vs = [...v];
          if (vs.length !== ks.length) for (const c of ks) chars.add(c);
          ks.forEach((c, i) => {
            if (c !== vs[i]) chars.add(c);
          });
        }
      }
    }
  }
  const esc = [...chars].map((c) => (/[\\\]^-]/.test(c) ? `\\${c}` : c)).join('');
  return new RegExp(`[${esc}]`, 'u');
}

export function t2s(s: string): string {
  if (!/[\u4e00-\u9fff]/.test(s)) return s;
  tradRe ??= traditionalChars();
  if (!tradRe.test(s)) return s;
  const c = converter ?? OpenCC.Converter({ from: 't', to: 'cn' });
  converter = c;
  return c(s);
}

function printableShare(s: string): number {
  if (s.length === 0) return 0;
  let ok = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if ((c >= 0x20 && c < 0x7f) || c === 0x0a || c >= 0x4e00) ok++;
  }
  return ok / [...s].length;
}

/** Hidden payloads: decoded strings that are mostly printable text (binary junk is not a message). */
export function decodeBlobs(s: string): { kind: TransformName; text: string }[] {
  const out: { kind: TransformName; text: string }[] = [];
  for (const m of s.matchAll(/[A-Za-z0-9+/]{16,}={0,2}/g)) {
    if (!/[0-9+/=]|[a-z][A-Z]/.test(m[0]) || /^[0-9a-fA-F]+$/.test(m[0])) continue;
    const t = Buffer.from(m[0], 'base64').toString('utf8');
    if (!t.includes('\uFFFD') && printableShare(t) > 0.9) out.push({ kind: 'base64', text: t });
  }
  for (const m of s.matchAll(/(?:\\x|0x)?(?:[0-9a-fA-F]{2}(?:\\x|[ :])?){8,}/g)) {
    const hex = m[0].replace(/\\x|0x|[ :]/g, '');
    if (hex.length % 2 !== 0 || /^\d+$/.test(hex)) continue;
    const t = Buffer.from(hex, 'hex').toString('utf8');
    if (!t.includes('\uFFFD') && printableShare(t) > 0.9) out.push({ kind: 'hex', text: t });
  }
  if (/%[0-9a-fA-F]{2}.*%[0-9a-fA-F]{2}/.test(s)) {
    try {
      const t = decodeURIComponent(s);
      if (t !== s) out.push({ kind: 'percent', text: t });
    } catch {
      // Not valid percent-encoding as a whole: nothing hidden there.
    }
  }
  if (/&(#x?[0-9a-fA-F]+|[a-z]+);/.test(s)) {
    const t = decodeEntities(s);
    if (t !== s) out.push({ kind: 'entity', text: t });
  }
  return out;
}

const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'", nbsp: ' ' };
function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number(e.slice(1)));
    return NAMED[e] ?? m;
  });
}

function surface(s: string, transforms: TransformName[]): string {
  let cur = s;
  const step = (name: TransformName, f: (x: string) => string): void => {
    const next = f(cur);
    if (next !== cur) {
      if (name !== 'nfkc' || next.toLowerCase() !== cur.toLowerCase()) transforms.push(name);
      cur = next;
    }
  };
  step('invisible', stripInvisible);
  step('nfkc', nfkc);
  step('fences', stripFences);
  step('homoglyph', foldHomoglyphs);
  step('leet', unmaskKeywords);
  step('spaced', joinSpaced);
  step('leet', unleet);
  step('t2s', t2s);
  return cur.toLowerCase().replace(/\s+/g, ' ').trim();
}

export function normalizeForGuard(input: string, depth = 0): GuardView {
  const transforms: TransformName[] = [];
  // Blobs are found on the NFKC text but before leet/lower-casing, which would corrupt base64.
  const pre = nfkc(stripInvisible(input));
  const text = surface(input, transforms);
  const decoded: string[] = [];
  if (depth < 2) {
    for (const b of decodeBlobs(pre)) {
      transforms.push(b.kind);
      const inner = normalizeForGuard(b.text, depth + 1);
      decoded.push(inner.text, ...inner.decoded);
    }
  }
  return { text, decoded, transforms: [...new Set(transforms)] };
}
