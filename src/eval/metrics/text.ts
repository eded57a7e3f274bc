/**
 * Answer-matching metrics: exact match with normalisation options, SQuAD-style token F1 that treats every CJK
 * character as a token (Chinese has no spaces), contains / regex checks and JSON-schema validity of a generation.
 */
import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ErrorObject } from 'ajv';
import { LoomError } from '../../core/errors.ts';
import { pySplit } from './pyfmt.ts';

export interface NormalizeOptions {
  lowercase?: boolean;
  /** Remove punctuation and symbols: ASCII, CJK (，。！？、「」…) and every Unicode P/S character. */
  stripPunctuation?: boolean;
  /** Remove the English articles a/an/the as words (SQuAD). */
  removeArticles?: boolean;
  /** Collapse whitespace runs and trim. */
  normalizeWhitespace?: boolean;
}

/** SQuAD's normalize_answer, extended to Unicode punctuation; every option defaults to on. */
export const SQUAD_NORMALIZE: Required<NormalizeOptions> = {
  lowercase: true,
  stripPunctuation: true,
  removeArticles: true,
  normalizeWhitespace: true,
};

const PUNCT = /[\p{P}\p{S}]/gu;
const ARTICLES = /(?<![\p{L}\p{N}_])(a|an|the)(?![\p{L}\p{N}_])/gu;

export function normalizeAnswer(s: string, opts: NormalizeOptions = SQUAD_NORMALIZE): string {
  const o = { ...SQUAD_NORMALIZE, ...opts };
  if (o.lowercase) s = s.toLowerCase();
  if (o.stripPunctuation) s = s.replace(PUNCT, '');
  if (o.removeArticles) s = s.replace(o.lowercase ? ARTICLES : new RegExp(ARTICLES.source, 'giu'), ' ');
  if (o.normalizeWhitespace) s = pySplit(s).join(' ');
  return s;
}

/** 1 if the normalised prediction equals any normalised reference, else 0. */
export function exactMatch(
  prediction: string,
  references: string | readonly string[],
  opts?: NormalizeOptions,
): number {
  const refs = typeof references === 'string' ? [references] : references;
  const p = normalizeAnswer(prediction, opts);
  return refs.some((r) => normalizeAnswer(r, opts) === p) ? 1 : 0;
}

// Han (incl. extensions), kana, Hangul syllables, CJK punctuation block and full-width forms.
const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u3000-\u303f\uff00-\uffef]/u;

/** Whitespace tokens, with every CJK character split out as its own token. */
export function cjkAwareTokens(s: string): string[] {
  const out: string[] = [];
  for (const word of pySplit(s)) {
    let buf = '';
    for (const ch of word) {
      if (CJK_CHAR.test(ch)) {
        if (buf) out.push(buf);
        buf = '';
        out.push(ch);
      } else buf += ch;
    }
    if (buf) out.push(buf);
  }
  return out;
}

/** SQuAD token F1 on normalised text (max over references); both empty = 1, one empty = 0. */
export function tokenF1(prediction: string, references: string | readonly string[], opts?: NormalizeOptions): number {
  const refs = typeof references === 'string' ? [references] : references;
  const p = cjkAwareTokens(normalizeAnswer(prediction, opts));
  let best = 0;
  for (const r of refs) {
    const g = cjkAwareTokens(normalizeAnswer(r, opts));
    let f: number;
    if (p.length === 0 || g.length === 0) f = p.length === g.length ? 1 : 0;
    else {
      const counts = new Map<string, number>();
      for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
      let common = 0;
      for (const t of p) {
        const c = counts.get(t) ?? 0;
        if (c > 0) {
          common++;
          counts.set(t, c - 1);
        }
      }
      if (common === 0) f = 0;
      else {
        const precision = common / p.length;
        const recall = common / g.length;
        f = (2 * precision * recall) / (precision + recall);
      }
    }
    if (f > best) best = f;
  }
  return best;
}

export function contains(text: string, needle: string, opts: { ignoreCase?: boolean } = {}): boolean {
  return opts.ignoreCase ? text.toLowerCase().includes(needle.toLowerCase()) : text.includes(needle);
}

/** Compiles a user pattern; accepts `/body/flags` or a bare body. Bad patterns are option errors. */
export function compilePattern(pattern: string, flags = 'u'): RegExp {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  try {
    return m ? new RegExp(m[1], m[2]) : new RegExp(pattern, flags);
  } catch (e) {
    throw new LoomError(
      'METRIC_OPTION',
      `invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`,
      {
        field: 'pattern',
      },
    );
  }
}

export function matchesRegex(text: string, pattern: string | RegExp): boolean {
  const re = typeof pattern === 'string' ? compilePattern(pattern) : pattern;
  re.lastIndex = 0;
  return re.test(text);
}

/** Takes the JSON out of a generation: a ```json fenced block if present, else the text itself. */
function extractJsonText(text: string): string {
  const fence = /```(?:json)?\s*\n([\s\S]*?)```/i.exec(text);
  return (fence ? fence[1] : text).trim();
}

export interface JsonCheck {
  valid: boolean;
  /** 'parse' when the text is not JSON, else schema errors as `path: message`. */
  errors: string[];
  value?: unknown;
}

// ajv loads on the first schema check: importing it costs ~0.1 s of every `loom eval metric …` start-up otherwise.
let ajvInstance: AjvClass | undefined;
function ajv(): AjvClass {
  if (!ajvInstance) {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    ajvInstance = new Ajv({ allErrors: true, strict: false });
  }
  return ajvInstance;
}
const compiled = new WeakMap<object, ReturnType<AjvClass['compile']>>();

/** Is the generation JSON that satisfies the schema (JSON Schema draft-07 via ajv)? */
export function checkJsonSchema(text: string, schema: Record<string, unknown> | boolean): JsonCheck {
  let value: unknown;
  try {
    value = JSON.parse(extractJsonText(text));
  } catch (e) {
    return { valid: false, errors: [`parse: ${(e as Error).message}`] };
  }
  if (schema === true) return { valid: true, errors: [], value };
  if (schema === false) return { valid: false, errors: ['schema is false'], value };
  let validate = compiled.get(schema);
  if (!validate) {
    try {
      validate = ajv().compile(schema);
    } catch (e) {
      throw new LoomError('METRIC_OPTION', `invalid JSON schema: ${(e as Error).message}`, { field: 'schema' });
    }
    compiled.set(schema, validate);
  }
  const valid = validate(value) as boolean;
  const errors = valid
    ? []
    : (validate.errors ?? []).map((er: ErrorObject) => `${er.instancePath || '/'}: ${er.message}`);
  return { valid, errors, value };
}
