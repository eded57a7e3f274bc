import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.ts';
import { closest } from '../core/nearest.ts';
import type { DataRow } from '../core/types.ts';
import { toCanonical } from './formats/canonical.ts';
import { isRecord, type JsonRecord, typeOf } from './formats/common.ts';
import { detectFormat, type FormatOptions, type InputFormatName, recordOf } from './formats/index.ts';
import { assertInputFile, type RawRecord, readJsonRecords } from './formats/io.ts';
import { SHAREGPT_DEFAULT_TAGS, turnContent } from './formats/sharegpt.ts';
import { isMalformed, readInputs } from './ingest/index.ts';

/**
 * Per-row dataset linter. Unlike the importers (which stop at the first problem of a record) it collects every
 * problem of every row, each with file, line and a concrete fix, so one run tells the user all they must change.
 */
export type LintCode =
  | 'invalid_json'
  | 'unreadable'
  | 'not_object'
  | 'unknown_format'
  | 'bad_messages'
  | 'unknown_role'
  | 'non_string_content'
  | 'empty_turn'
  | 'system_not_first'
  | 'duplicate_system'
  | 'role_order'
  | 'missing_assistant'
  | 'last_not_assistant'
  | 'too_long'
  | 'inconsistent_system'
  | 'missing_label'
  | 'label_not_in_set'
  | 'empty_text'
  | 'same_chosen_rejected';

export interface LintFinding {
  file: string;
  line: number;
  severity: 'error' | 'warning';
  code: LintCode;
  message: string;
  fix: string;
}

export interface LintOptions {
  /** File name used in findings when items carry none. */
  file?: string;
  format?: InputFormatName;
  formatOptions?: FormatOptions;
  /** Allowed labels for classification rows. */
  labels?: string[];
  /** Maximum tokens per row (LLaMA-Factory's cutoff_len); needs `countTokens`. */
  cutoffLen?: number;
  countTokens?: TokenCounter;
  /** Stop listing individual findings of one code after this many (counts stay exact). */
  maxPerCode?: number;
}

export interface LintReport {
  files: string[];
  rows: number;
  errors: number;
  warnings: number;
  byCode: Partial<Record<LintCode, number>>;
  findings: LintFinding[];
}

export type TokenCounter = (text: string) => Promise<number>;

const DESCRIPTIONS: Record<LintCode, string> = {
  invalid_json: 'line is not valid JSON',
  unreadable: 'record cannot be read (CSV quoting, encoding, …)',
  not_object: 'record is not a JSON object',
  unknown_format: 'record matches no known format',
  bad_messages: 'messages field is not a list of turns',
  unknown_role: 'turn has an unknown role',
  non_string_content: 'turn content is not a string',
  empty_turn: 'turn is empty',
  system_not_first: 'system prompt is not the first turn',
  duplicate_system: 'more than one system prompt in a row',
  role_order: 'user and assistant turns do not alternate',
  missing_assistant: 'row has no assistant turn',
  last_not_assistant: 'last turn is not an assistant turn',
  too_long: 'row is longer than cutoff_len tokens',
  inconsistent_system: 'rows use different system prompts',
  missing_label: 'classification row has no label',
  label_not_in_set: 'label is not in the label set',
  empty_text: 'text is empty',
  same_chosen_rejected: 'chosen and rejected answers are identical',
};

/** Per-message template overhead when counting a conversation (ChatML: `<|im_start|>role\n … <|im_end|>\n`). */
const TOKENS_PER_MESSAGE = 4;

interface LooseTurn {
  role: unknown;
  content: unknown;
}

type Loose =
  | { kind: 'messages'; turns: LooseTurn[]; roleField: string }
  | { kind: 'preference'; turns: LooseTurn[]; chosen: unknown; rejected: unknown }
  | { kind: 'text'; text: unknown; label: unknown; hasLabel: boolean };

/** Reads a record into loose turns, mapping sharegpt/alpaca/openai shapes without validating anything yet. */
function loosen(rec: JsonRecord, format: InputFormatName, opts: FormatOptions): Loose | string {
  const fmt = format === 'auto' ? detectFormat(rec) : format;
  const cols = opts.columns ?? {};
  if (fmt === 'sharegpt') {
    const t = { ...SHAREGPT_DEFAULT_TAGS, ...(opts.tags ?? {}) };
    const col = cols.messages ?? (Array.isArray(rec.conversations) ? 'conversations' : 'messages');
    const raw = rec[col];
    if (!Array.isArray(raw)) return `"${col}" is ${typeOf(raw)}, not a list of turns`;
    const first = raw[0];
    const openai = isRecord(first) && 'role' in first && !('from' in first) && !opts.tags;
    const roleTag = openai ? 'role' : t.role_tag;
    const contentTag = openai ? 'content' : t.content_tag;
    const map: Record<string, string> = openai
      ? { user: 'user', assistant: 'assistant', system: 'system', tool: 'tool' }
      : {
          [t.user_tag]: 'user',
          [t.assistant_tag]: 'assistant',
          [t.observation_tag]: 'tool',
          [t.function_tag]: 'assistant',
          [t.system_tag]: 'system',
        };
    const turns: LooseTurn[] = raw.map((m) =>
      isRecord(m)
        ? {
            role: typeof m[roleTag] === 'string' ? (map[m[roleTag] as string] ?? `?${m[roleTag]}`) : m[roleTag],
            content: turnContent(m[contentTag], t.utterance_separator) ?? m[contentTag],
          }
        : { role: undefined, content: m },
    );
    const sys = rec[cols.system ?? 'system'];
    if (typeof sys === 'string' && sys !== '') turns.unshift({ role: 'system', content: sys });
    if ('chosen' in rec || 'rejected' in rec) {
      const side = (v: unknown) => (isRecord(v) ? v[contentTag] : v);
      return { kind: 'preference', turns, chosen: side(rec.chosen), rejected: side(rec.rejected) };
    }
    return { kind: 'messages', turns, roleField: `${col}[].${roleTag}` };
  }
  if (fmt === 'alpaca') {
    const g = (k: string, d: string) => rec[cols[k] ?? d];
    const turns: LooseTurn[] = [];
    const sys = g('system', 'system');
    if (sys !== undefined && sys !== null && sys !== '') turns.push({ role: 'system', content: sys });
    const hist = g('history', 'history');
    if (Array.isArray(hist)) {
      for (const p of hist) {
        const pair = Array.isArray(p) ? p : [p, undefined];
        turns.push({ role: 'user', content: pair[0] }, { role: 'assistant', content: pair[1] });
      }
    }
    const ins = g('prompt', 'instruction');
    const inp = g('query', 'input');
    const user =
      typeof ins === 'string' && (inp === undefined || inp === null || typeof inp === 'string')
        ? [ins, inp].filter((s) => typeof s === 'string' && s !== '').join('\n')
        : ins;
    turns.push({ role: 'user', content: user });
    if ('chosen' in rec || 'rejected' in rec)
      return { kind: 'preference', turns, chosen: rec.chosen, rejected: rec.rejected };
    const out = g('response', 'output');
    if (out !== undefined) turns.push({ role: 'assistant', content: out });
    return { kind: 'messages', turns, roleField: 'role' };
  }
  if (fmt === 'openai' && 'preferred_output' in rec) {
    const input = isRecord(rec.input) ? rec.input.messages : undefined;
    if (!Array.isArray(input)) return '"input.messages" is not a list of messages';
    const side = (v: unknown) => (Array.isArray(v) && isRecord(v[0]) ? v[0].content : v);
    return {
      kind: 'preference',
      turns: input.map(turnOf),
      chosen: side(rec.preferred_output),
      rejected: side(rec.non_preferred_output),
    };
  }
  if (fmt === 'messages' || fmt === 'openai') {
    if (!Array.isArray(rec.messages)) return `"messages" is ${typeOf(rec.messages)}, not a list of messages`;
    return { kind: 'messages', turns: rec.messages.map(turnOf), roleField: 'messages[].role' };
  }
  if (fmt === 'preference') {
    const p = rec.prompt ?? rec.messages;
    const turns = typeof p === 'string' ? [{ role: 'user', content: p }] : Array.isArray(p) ? p.map(turnOf) : [];
    const side = (v: unknown) =>
      Array.isArray(v) ? (isRecord(v[0]) ? v[0].content : v[0]) : isRecord(v) ? v.content : v;
    return { kind: 'preference', turns, chosen: side(rec.chosen), rejected: side(rec.rejected) };
  }
  if (fmt === 'text' || fmt === 'classification') {
    return { kind: 'text', text: rec.text, label: rec.label, hasLabel: fmt === 'classification' || 'label' in rec };
  }
  return 'record has none of "messages", "conversations", "instruction", "text"';
}

function turnOf(m: unknown): LooseTurn {
  return isRecord(m) ? { role: m.role, content: m.content } : { role: undefined, content: m };
}

const KNOWN_ROLES = new Set(['system', 'user', 'assistant', 'tool']);

export async function lintRows(
  items: AsyncIterable<RawRecord | DataRow> | Iterable<RawRecord | DataRow>,
  opts: LintOptions = {},
): Promise<LintReport> {
  const file = opts.file ?? '<rows>';
  const findings: LintFinding[] = [];
  const byCode: Partial<Record<LintCode, number>> = {};
  const labels = opts.labels?.length ? new Set(opts.labels) : undefined;
  const systems = new Map<string, number[]>();
  let rows = 0;
  const add = (line: number, code: LintCode, severity: 'error' | 'warning', message: string, fix: string, f = file) => {
    byCode[code] = (byCode[code] ?? 0) + 1;
    findings.push({ file: f, line, severity, code, message, fix });
  };

  for await (const item of items) {
    rows++;
    let line: number;
    let rec: unknown;
    let f = file;
    if ('source' in item) {
      line = item.source.line;
      f = item.source.file;
      rec = toCanonical(item);
    } else {
      line = item.line;
      if ('error' in item) {
        if (/^invalid JSON/.test(item.error)) {
          add(
            line,
            'invalid_json',
            'error',
            item.error,
            'fix the JSON syntax of this line (one complete object per line)',
          );
        } else add(line, 'unreadable', 'error', item.error, 'fix the quoting or encoding of this record');
        continue;
      }
      rec = item.value;
    }
    if (!isRecord(rec)) {
      add(line, 'not_object', 'error', `record is ${typeOf(rec)}`, 'write one JSON object per line', f);
      continue;
    }
    const loose = loosen(rec, 'source' in item ? 'auto' : (opts.format ?? 'auto'), opts.formatOptions ?? {});
    if (typeof loose === 'string') {
      const code: LintCode = loose.startsWith('record has none') ? 'unknown_format' : 'bad_messages';
      add(line, code, 'error', loose, 'use {"messages":[{"role","content"}…]}, {"text"}, alpaca or sharegpt fields', f);
      continue;
    }
    if (loose.kind === 'text') {
      if (typeof loose.text !== 'string') {
        add(line, 'non_string_content', 'error', `"text" is ${typeOf(loose.text)}`, 'make "text" a string', f);
      } else if (loose.text.trim() === '')
        add(line, 'empty_text', 'error', '"text" is empty', 'drop the row or fill in the text', f);
      if (loose.hasLabel || labels) {
        if (loose.label === undefined || loose.label === null || loose.label === '') {
          add(
            line,
            'missing_label',
            'error',
            'no "label"',
            `add a "label"${labels ? ` (one of ${[...labels].join(', ')})` : ''}`,
            f,
          );
        } else if (labels && !labels.has(String(loose.label))) {
          const near = closest(String(loose.label), [...labels]);
          add(
            line,
            'label_not_in_set',
            'error',
            `label ${JSON.stringify(loose.label)} is not in the label set`,
            near
              ? `did you mean "${near}"? otherwise add it to --labels`
              : 'use one of the labels or add it to --labels',
            f,
          );
        }
      }
      if (opts.cutoffLen && opts.countTokens && typeof loose.text === 'string') {
        const n = await opts.countTokens(loose.text);
        if (n > opts.cutoffLen) {
          add(
            line,
            'too_long',
            'error',
            `${n} tokens > cutoff_len ${opts.cutoffLen}`,
            'shorten or split the text, or raise cutoff_len',
            f,
          );
        }
      }
      continue;
    }
    lintTurns(loose.turns, loose.kind === 'preference', (code, sev, msg, fix) => add(line, code, sev, msg, fix, f));
    const sys = loose.turns.find((t) => t.role === 'system');
    if (sys && typeof sys.content === 'string') {
      const ls = systems.get(sys.content) ?? [];
      ls.push(line);
      systems.set(sys.content, ls);
    }
    if (loose.kind === 'preference') {
      for (const [k, v] of [
        ['chosen', loose.chosen],
        ['rejected', loose.rejected],
      ] as const) {
        if (typeof v !== 'string')
          add(
            line,
            'non_string_content',
            'error',
            `"${k}" answer is ${typeOf(v)}`,
            `give "${k}" one assistant answer`,
            f,
          );
        else if (v.trim() === '')
          add(line, 'empty_turn', 'error', `"${k}" answer is empty`, `write the ${k} answer or drop the row`, f);
      }
      if (typeof loose.chosen === 'string' && loose.chosen === loose.rejected) {
        add(
          line,
          'same_chosen_rejected',
          'warning',
          'chosen equals rejected',
          'a preference pair needs two different answers',
          f,
        );
      }
    }
    if (opts.cutoffLen && opts.countTokens) {
      const texts = loose.turns.map((t) => (typeof t.content === 'string' ? t.content : ''));
      if (loose.kind === 'preference') {
        const c = typeof loose.chosen === 'string' ? loose.chosen : '';
        const r = typeof loose.rejected === 'string' ? loose.rejected : '';
        texts.push(c.length >= r.length ? c : r);
      }
      let n = 0;
      for (const t of texts) n += (await opts.countTokens(t)) + TOKENS_PER_MESSAGE;
      if (n > opts.cutoffLen) {
        add(
          line,
          'too_long',
          'error',
          `${n} tokens > cutoff_len ${opts.cutoffLen} (the end of the answer would be cut off in training)`,
          'shorten the conversation, split it into several rows, or raise cutoff_len',
          f,
        );
      }
    }
  }

  if (systems.size > 1) {
    const variants = [...systems.entries()].sort((a, b) => b[1].length - a[1].length);
    const [main] = variants[0]!;
    for (const [text, lines] of variants.slice(1)) {
      add(
        lines[0]!,
        'inconsistent_system',
        'warning',
        `system prompt differs from the most common one in ${lines.length} row(s) (lines ${lines.slice(0, 5).join(', ')}${lines.length > 5 ? ', …' : ''}): ${JSON.stringify(short(text))}`,
        `use one system prompt for all rows, e.g. ${JSON.stringify(short(main))}`,
      );
    }
  }

  findings.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  const errors = findings.filter((x) => x.severity === 'error').length;
  return { files: [file], rows, errors, warnings: findings.length - errors, byCode, findings };
}

function lintTurns(
  turns: LooseTurn[],
  promptOnly: boolean,
  add: (code: LintCode, sev: 'error' | 'warning', msg: string, fix: string) => void,
): void {
  if (turns.length === 0) {
    add('missing_assistant', 'error', 'conversation is empty', 'add a user turn and an assistant answer');
    return;
  }
  let systemsSeen = 0;
  let prev: string | undefined;
  turns.forEach((t, i) => {
    const where = `turn ${i + 1}`;
    const role = t.role;
    if (typeof role !== 'string' || !KNOWN_ROLES.has(role)) {
      const shown = typeof role === 'string' && role.startsWith('?') ? role.slice(1) : role;
      add(
        'unknown_role',
        'error',
        `${where}: unknown role ${JSON.stringify(shown)}`,
        'use system, user, assistant or tool (or map the tags of this file)',
      );
      // Order checks go on from here as if the turn were there, so one bad role is reported once.
      prev = String(role);
    }
    if (typeof t.content !== 'string') {
      add(
        'non_string_content',
        'error',
        `${where} (${String(role)}): content is ${typeOf(t.content)}`,
        'make content a plain string',
      );
    } else if (t.content.trim() === '') {
      add(
        'empty_turn',
        'error',
        `${where} (${String(role)}) is empty`,
        role === 'assistant' ? 'write the answer or drop the row' : 'fill in the turn or remove it',
      );
    }
    if (role === 'system') {
      systemsSeen++;
      if (systemsSeen > 1)
        add('duplicate_system', 'error', `${where}: a second system prompt`, 'keep one system prompt, at the start');
      else if (i > 0)
        add(
          'system_not_first',
          'error',
          `${where}: system prompt after other turns`,
          'move the system prompt to the first turn',
        );
      return;
    }
    if (role === 'user' || role === 'assistant' || role === 'tool') {
      if (role === 'user' && prev === 'user') {
        add(
          'role_order',
          'error',
          `${where}: two user turns in a row`,
          'merge the two user turns or insert the missing assistant answer',
        );
      } else if (role === 'assistant' && prev === undefined) {
        add(
          'role_order',
          'error',
          `${where}: conversation starts with the assistant`,
          'start with a user turn (a greeting can go in the system prompt)',
        );
      } else if (role === 'assistant' && prev === 'assistant') {
        add('role_order', 'error', `${where}: two assistant turns in a row`, 'merge the two answers into one turn');
      } else if (role === 'tool' && prev !== 'assistant' && prev !== 'tool') {
        add(
          'role_order',
          'error',
          `${where}: tool result without an assistant call before it`,
          'put the assistant tool call before the tool result',
        );
      }
      prev = role;
    }
  });
  if (promptOnly) return;
  const roles = turns.map((t) => t.role);
  if (!roles.includes('assistant')) {
    add(
      'missing_assistant',
      'error',
      'no assistant turn',
      'add the assistant answer (or use the text format for unlabelled text)',
    );
  } else if (roles[roles.length - 1] !== 'assistant') {
    add(
      'last_not_assistant',
      'error',
      `last turn is ${String(roles[roles.length - 1])}, not assistant`,
      'end with the assistant answer or drop the trailing turns',
    );
  }
}

function short(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

/** Loads a HF tokenizer.json (or a folder holding one) and returns a token counter. */
export async function loadTokenCounter(pathOrDir: string): Promise<TokenCounter> {
  const file =
    existsSync(pathOrDir) && statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'tokenizer.json') : pathOrDir;
  if (!existsSync(file)) {
    throw new LoomError('TOKENIZER', `tokenizer not found: ${file}`, {
      file,
      hint: 'pass a tokenizer.json or a model folder that has one',
    });
  }
  const { Tokenizer } = await import('tokenizers');
  let tok: InstanceType<typeof Tokenizer>;
  try {
    tok = Tokenizer.fromFile(file);
  } catch (e) {
    throw new LoomError('TOKENIZER', `cannot load tokenizer ${file}: ${(e as Error).message}`, { file, cause: e });
  }
  return async (text: string) => (await tok.encode(text, null, { addSpecialTokens: false })).getLength();
}

export async function lintFile(path: string, opts: LintOptions = {}): Promise<LintReport> {
  assertInputFile(path);
  // JSON and JSONL are read here (exact lines, raw values); CSV, Parquet, compressed files, other encodings
  // through ingest, whose unmapped fields come back as the record.
  const items = /\.(jsonl?|json)$/i.test(path) ? readJsonRecords(path) : ingestRecords(path);
  return lintRows(items, { ...opts, file: opts.file ?? path });
}

async function* ingestRecords(path: string): AsyncGenerator<RawRecord> {
  for await (const it of readInputs([path], { baseDir: process.cwd() })) {
    if (isMalformed(it)) yield { line: it.line, error: it.reason, raw: it.raw };
    else yield { line: it.source.line, value: recordOf(it), raw: '' };
  }
}

/** Grouped, readable text: one block per problem kind, each finding with file:line and the fix. */
export function formatLintReport(r: LintReport, maxPerCode = 20): string {
  const lines: string[] = [];
  lines.push(`${r.files.join(', ')}: ${r.rows} rows, ${r.errors} error(s), ${r.warnings} warning(s)`);
  const groups = new Map<LintCode, LintFinding[]>();
  for (const f of r.findings) groups.set(f.code, [...(groups.get(f.code) ?? []), f]);
  const order = [...groups.entries()].sort((a, b) =>
    a[1][0]!.severity === b[1][0]!.severity ? b[1].length - a[1].length : a[1][0]!.severity === 'error' ? -1 : 1,
  );
  for (const [code, fs] of order) {
    lines.push('', `${fs[0]!.severity} ${code} (${fs.length}): ${DESCRIPTIONS[code]}`);
    for (const f of fs.slice(0, maxPerCode)) {
      lines.push(`  ${f.file}:${f.line}: ${f.message}`, `      fix: ${f.fix}`);
    }
    if (fs.length > maxPerCode) lines.push(`  … and ${fs.length - maxPerCode} more (use --json for all)`);
  }
  if (r.findings.length === 0) lines.push('no problems found');
  return lines.join('\n');
}

export interface ConversationProblem {
  code: LintCode;
  severity: 'error' | 'warning';
  message: string;
  fix: string;
}

/** The structural problems of one conversation (what `loom data lint` reports for its turns). */
export function conversationProblems(
  turns: readonly { role: unknown; content: unknown }[],
  promptOnly = false,
): ConversationProblem[] {
  const out: ConversationProblem[] = [];
  lintTurns([...turns], promptOnly, (code, severity, message, fix) => out.push({ code, severity, message, fix }));
  return out;
}

/** Tokens of a row as the linter counts them: text, or message contents plus TOKENS_PER_MESSAGE per message. */
export async function rowTokens(row: DataRow, count: TokenCounter): Promise<number> {
  const msgs = row.messages ?? [
    ...(row.prompt ?? []),
    ...(typeof row.chosen === 'string' ? [{ content: row.chosen }] : (row.chosen ?? [])),
  ];
  if (row.messages || row.prompt) {
    let n = 0;
    for (const m of msgs) n += (await count(m.content)) + TOKENS_PER_MESSAGE;
    return n;
  }
  return count(row.text ?? '');
}
