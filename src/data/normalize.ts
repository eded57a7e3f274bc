/**
 * Normalisation step. `normalizeStep(cfg)` (cfg: the `normalize` section of src/config/data-clean.ts) returns a Step that rewrites `text`, message contents and
 * prompt/chosen/rejected contents (labels and meta are untouched); `createNormalizer(opts)` gives the pure
 * string function `(s) => { text, kinds }` for library use and benchmarks.
 *
 * Transforms, in order (each can be switched off; `kinds` names the ones that changed the string):
 *  - `html`: HTML entities (`&amp;`, `&#39;`, `&#x4e2d;`, common named ones) decoded; `<script>`/`<style>` blocks
 *    removed; tags from a fixed list of HTML tag names removed (`<br>`, `</p>`, `</div>`, `</li>`, `<hN>` → line
 *    break). Unknown tag-like text such as `<PHONE>` or `<T>` is left alone.
 *  - `controls`: C0/C1 control characters except tab and newline; `zero_width`: U+200B–U+200D, U+2060, U+FEFF,
 *    soft hyphen U+00AD, U+180E (this also breaks emoji ZWJ sequences into their parts); `bidi`: U+061C,
 *    U+200E/F, U+202A–U+202E, U+2066–U+2069.
 *  - `fullwidth`: U+FF01–U+FF5E → ASCII and U+3000 → space; `nfkc`: Unicode NFKC.
 *    With `cjkPunct: 'keep'` (default) the full-width marks ，！？：；（） and the ellipsis … stay as they are
 *    when the next or previous non-space character is CJK, so Chinese sentences keep Chinese punctuation
 *    (NFKC alone would turn ， into , and … into ...). `cjkPunct: 'ascii'` converts them everywhere.
 *  - `t2s`: Traditional → Simplified Chinese with opencc-js (`t`, `tw` or `hk` source variant); off by default.
 *  - `whitespace`: CRLF → LF, runs of spaces/tabs/Unicode spaces → one space, spaces around line breaks dropped,
 *    3+ line breaks → one blank line (paragraphs stay separated), leading/trailing whitespace trimmed.
 *
 * Reporting: every changed row adds `normalize.changed_rows` and `normalize.<kind>` counters and, by default
 * (`logChanges: 'all'`), goes to rejects (action `changed`, the original row, reason `normalized: <kinds>`), so
 * nothing changes silently. On web-scale corpora, where most rows change, `sample` logs only the first
 * `sampleSize` changed rows of each kind, and `none` only counts.
 */
import type { z } from 'zod';
import { type NormalizeConfig, normalizeConfig } from '../config/data-clean.ts';
import { validateConfig } from '../config/load.ts';
import type { DataRow, Message } from '../core/types.ts';
import type { Step, StepContext } from './step.ts';

export type ChangeKind = 'html' | 'controls' | 'zero_width' | 'bidi' | 'fullwidth' | 'nfkc' | 't2s' | 'whitespace';

export interface NormalizeOptions {
  html?: boolean;
  controls?: boolean;
  zeroWidth?: boolean;
  bidi?: boolean;
  fullwidth?: boolean;
  nfkc?: boolean;
  cjkPunct?: 'keep' | 'ascii';
  t2s?: false | 't' | 'tw' | 'hk';
  whitespace?: boolean;
}

export interface NormalizeStepOptions extends NormalizeOptions {
  logChanges?: 'none' | 'sample' | 'all';
  sampleSize?: number;
}

export interface NormalizeResult {
  text: string;
  kinds: ChangeKind[];
}

export type Normalizer = (s: string) => NormalizeResult;

const NAMED: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  copy: '©',
  reg: '®',
  trade: '™',
  hellip: '…',
  mdash: '—',
  ndash: '–',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  middot: '·',
  bull: '•',
  laquo: '«',
  raquo: '»',
  yen: '¥',
  euro: '€',
  pound: '£',
  cent: '¢',
  times: '×',
  divide: '÷',
  deg: '°',
  ensp: ' ',
  emsp: ' ',
  thinsp: ' ',
};
const ENTITY_RE = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,8}));/g;
const TAG_NAMES =
  'a|abbr|address|article|aside|b|big|blockquote|body|br|center|cite|code|dd|del|div|dl|dt|em|font|footer|h[1-6]|head|header|hr|html|i|img|ins|kbd|li|link|mark|meta|nav|ol|p|pre|q|s|section|small|span|strike|strong|sub|sup|table|tbody|td|tfoot|th|thead|title|tr|tt|u|ul|var|wbr';
// Attributes, when present, must contain `=`, so prose like "a<b and c>d" is not taken for a tag.
const TAG_RE = new RegExp(`<\\/?(?:${TAG_NAMES})(?:\\s[^<>]*=[^<>]*)?\\s*\\/?>`, 'gi');
const BLOCK_TAG_RE = /^<\/?(?:br|p|div|li|tr|h[1-6]|hr|blockquote|pre|ul|ol|table|section|article)\b/i;
const SCRIPT_RE = /<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi;
const CONTROL_RE = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
const ZERO_WIDTH_RE = /[\u200b-\u200d\u2060\ufeff\u00ad\u180e]/g;
const BIDI_RE = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const FULLWIDTH_RE = /[\uff01-\uff5e\u3000]/g;
const NON_ASCII_OR_CTRL = /[^\x09\x0a\x20-\x7e]/;
// CJK ideographs, kana, hangul and CJK symbols/punctuation: context for keeping full-width punctuation.
const CJK_CHAR = /[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]/;
const KEEP_PUNCT = '，！？：；（）…';
const KEEP_RE = /[，！？：；（）…]/g;
const PUA_BASE = 0xe000 + 0x700; // private-use code points NFKC leaves alone

function decodeEntities(s: string): string {
  return s.replace(ENTITY_RE, (m, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
    if (name !== undefined) return NAMED[name] ?? m;
    const cp = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex!, 16);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return m;
    return String.fromCodePoint(cp);
  });
}

function stripHtml(s: string): string {
  let out = s;
  if (out.includes('<')) {
    out = out.replace(SCRIPT_RE, '');
    out = out.replace(TAG_RE, (tag) => (BLOCK_TAG_RE.test(tag) ? '\n' : ''));
  }
  if (out.includes('&')) out = decodeEntities(out);
  return out;
}

function neighbourIsCjk(s: string, i: number): boolean {
  for (let j = i - 1; j >= 0; j--) {
    const c = s[j]!;
    if (c === ' ' || c === '\t') continue;
    if (CJK_CHAR.test(c) && !KEEP_PUNCT.includes(c)) return true;
    if (!KEEP_PUNCT.includes(c)) break;
  }
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j]!;
    if (c === ' ' || c === '\t') continue;
    if (CJK_CHAR.test(c) && !KEEP_PUNCT.includes(c)) return true;
    if (!KEEP_PUNCT.includes(c)) break;
  }
  return false;
}

/** Swaps CJK-context punctuation for private-use placeholders (restored by `restore`). */
function protect(s: string): string {
  KEEP_RE.lastIndex = 0;
  if (!KEEP_RE.test(s)) return s;
  return s.replace(KEEP_RE, (c, i: number) =>
    neighbourIsCjk(s, i) ? String.fromCharCode(PUA_BASE + KEEP_PUNCT.indexOf(c)) : c,
  );
}
const PUA_RE = new RegExp(`[\\u${PUA_BASE.toString(16)}-\\u${(PUA_BASE + KEEP_PUNCT.length - 1).toString(16)}]`, 'g');
function restore(s: string): string {
  return s.replace(PUA_RE, (c) => KEEP_PUNCT[c.charCodeAt(0) - PUA_BASE]!);
}

function collapseWhitespace(s: string): string {
  return s
    .replace(/\r\n?/g, '\n')
    .replace(/[\t\v\f\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000 ]+/g, ' ')
    .replace(/ ?\n ?/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Builds the string normaliser (async because opencc-js is loaded only when `t2s` is on). */
export async function createNormalizer(opts: NormalizeOptions = {}): Promise<Normalizer> {
  const o = {
    html: opts.html ?? true,
    controls: opts.controls ?? true,
    zeroWidth: opts.zeroWidth ?? true,
    bidi: opts.bidi ?? true,
    fullwidth: opts.fullwidth ?? true,
    nfkc: opts.nfkc ?? true,
    keepCjk: (opts.cjkPunct ?? 'keep') === 'keep',
    whitespace: opts.whitespace ?? true,
  };
  let t2s: ((s: string) => string) | undefined;
  if (opts.t2s) {
    const OpenCC = await import('opencc-js');
    t2s = OpenCC.Converter({ from: opts.t2s, to: 'cn' });
  }
  return (input: string): NormalizeResult => {
    const kinds: ChangeKind[] = [];
    let s = input;
    const apply = (kind: ChangeKind, f: (x: string) => string): void => {
      const next = f(s);
      if (next !== s) {
        kinds.push(kind);
        s = next;
      }
    };
    if (o.html && (s.includes('<') || s.includes('&'))) apply('html', stripHtml);
    if (NON_ASCII_OR_CTRL.test(s)) {
      if (o.controls) apply('controls', (x) => x.replace(CONTROL_RE, (c) => (c === '\r' ? c : '')));
      if (o.zeroWidth) apply('zero_width', (x) => x.replace(ZERO_WIDTH_RE, ''));
      if (o.bidi) apply('bidi', (x) => x.replace(BIDI_RE, ''));
      if (o.fullwidth || o.nfkc) {
        const guarded = o.keepCjk ? protect(s) : s;
        let t = guarded;
        if (o.fullwidth) {
          const fw = t.replace(FULLWIDTH_RE, (c) =>
            c === '\u3000' ? ' ' : String.fromCharCode(c.charCodeAt(0) - 0xfee0),
          );
          if (fw !== t) kinds.push('fullwidth');
          t = fw;
        }
        if (o.nfkc) {
          const n = t.normalize('NFKC');
          if (n !== t) kinds.push('nfkc');
          t = n;
        }
        s = guarded === s ? t : restore(t);
      }
      if (t2s) apply('t2s', t2s);
    }
    if (o.whitespace) apply('whitespace', collapseWhitespace);
    return { text: s, kinds };
  };
}

function normalizeMessages(msgs: Message[], norm: Normalizer, kinds: Set<ChangeKind>): Message[] {
  let changed = false;
  const out = msgs.map((m) => {
    if (typeof m.content !== 'string') return m;
    const r = norm(m.content);
    if (r.kinds.length === 0) return m;
    changed = true;
    for (const k of r.kinds) kinds.add(k);
    return { ...m, content: r.text };
  });
  return changed ? out : msgs;
}

/** Normalises every text field of a row; returns the same object when nothing changed. */
function normalizeRow(row: DataRow, norm: Normalizer): { row: DataRow; kinds: ChangeKind[] } {
  const kinds = new Set<ChangeKind>();
  let out: DataRow | undefined;
  const set = <K extends keyof DataRow>(k: K, v: DataRow[K]): void => {
    if (!out) out = { ...row };
    out[k] = v;
  };
  if (typeof row.text === 'string') {
    const r = norm(row.text);
    if (r.kinds.length) {
      set('text', r.text);
      for (const k of r.kinds) kinds.add(k);
    }
  }
  for (const f of ['messages', 'prompt'] as const) {
    const v = row[f];
    if (Array.isArray(v)) {
      const n = normalizeMessages(v, norm, kinds);
      if (n !== v) set(f, n);
    }
  }
  for (const f of ['chosen', 'rejected'] as const) {
    const v = row[f];
    if (typeof v === 'string') {
      const r = norm(v);
      if (r.kinds.length) {
        set(f, r.text);
        for (const k of r.kinds) kinds.add(k);
      }
    } else if (Array.isArray(v)) {
      const n = normalizeMessages(v, norm, kinds);
      if (n !== v) set(f, n);
    }
  }
  return { row: out ?? row, kinds: [...kinds] };
}

/** Maps the snake_case `normalize` config section to normaliser options. */
function normalizeOptions(cfg: NormalizeConfig): NormalizeStepOptions {
  return {
    html: cfg.html,
    controls: cfg.controls,
    zeroWidth: cfg.zero_width,
    bidi: cfg.bidi,
    fullwidth: cfg.fullwidth,
    nfkc: cfg.nfkc,
    cjkPunct: cfg.cjk_punct,
    t2s: cfg.t2s,
    whitespace: cfg.whitespace,
    logChanges: cfg.log_changes,
    sampleSize: cfg.sample_size,
  };
}

export function normalizeStep(input: z.input<typeof normalizeConfig> = {}): Step {
  const cfg = validateConfig(normalizeConfig, input, '<normalize config>');
  const opts = normalizeOptions(cfg);
  const log = opts.logChanges ?? 'all';
  const sampleSize = opts.sampleSize ?? 20;
  return {
    name: 'normalize',
    async *run(rows: AsyncIterable<DataRow>, ctx: StepContext): AsyncIterable<DataRow> {
      if (!cfg.enabled) {
        yield* rows;
        return;
      }
      const norm = await createNormalizer(opts);
      const logged = new Map<ChangeKind, number>();
      for await (const row of rows) {
        const r = normalizeRow(row, norm);
        if (r.kinds.length) {
          ctx.count('normalize.changed_rows');
          let wanted = log === 'all';
          for (const k of r.kinds) {
            ctx.count(`normalize.${k}`);
            const n = logged.get(k) ?? 0;
            if (log === 'sample' && n < sampleSize) {
              wanted = true;
              logged.set(k, n + 1);
            }
          }
          if (wanted) {
            ctx.reject({
              step: 'normalize',
              reason: `normalized: ${r.kinds.join(',')}`,
              action: 'changed',
              source: row.source,
              row,
              detail: { kinds: r.kinds, sample: log === 'sample' },
            });
          }
        }
        yield r.row;
      }
    },
  };
}
