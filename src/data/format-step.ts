import type { DataConfig } from '../config/data.ts';
import { LoomError } from '../core/errors.ts';
import type { DataRow, Message } from '../core/types.ts';
import { exportRow, type FormatName, rowKind } from './formats/index.ts';
import { conversationProblems, rowTokens, type TokenCounter } from './lint.ts';
import type { Step } from './step.ts';

const CONVERSATION_FORMATS = new Set<FormatName>(['messages', 'openai', 'sharegpt', 'alpaca']);

export function formatStep(out: DataConfig['output'], countTokens?: TokenCounter): Step {
  const allowed = out.labels ? new Set(out.labels) : undefined;
  return {
    name: 'format',
    async *run(rows, ctx) {
      for await (const input of rows) {
        let row = input;
        const drop = (reason: string, detail?: Record<string, unknown>) =>
          ctx.reject({ step: 'format', reason, action: 'dropped', source: row.source, row, detail });
        if (row.label !== undefined && out.label_map[row.label] !== undefined) {
          row = { ...row, label: out.label_map[row.label] };
        }
        const kind = rowKind(row);
        const fmt = out.format;
        const ok =
          fmt === 'text'
            ? kind === 'text' || kind === 'classification'
            : fmt === 'classification'
              ? kind === 'classification'
              : fmt === 'preference'
                ? kind === 'preference'
                : kind === 'messages' || (kind === 'preference' && fmt !== 'messages');
        if (!ok) {
          drop(`format.kind_mismatch`, { kind, output: fmt });
          continue;
        }
        if (allowed && row.label !== undefined && !allowed.has(row.label)) {
          drop('format.label_not_in_set', { label: row.label });
          continue;
        }
        if (CONVERSATION_FORMATS.has(fmt) || fmt === 'preference') {
          const field = row.messages ? 'messages' : 'prompt';
          let msgs = row[field] ?? [];
          // The configured system prompt is added when rows are written (withSystemPrompt), not here: dedup
          // must compare what users and agents said, not a shared prompt that makes every row look alike.
          if (out.system_prompt !== undefined && out.system_mode === 'replace' && msgs[0]?.role === 'system') {
            if (msgs[0].content !== out.system_prompt) {
              ctx.reject({
                step: 'format',
                reason: 'format.system_replaced',
                action: 'changed',
                source: row.source,
                row,
              });
            }
            msgs = msgs.slice(1);
            row = { ...row, [field]: msgs };
          }
          if (field === 'messages' && out.trailing_user === 'trim') {
            const keep = answeredLength(msgs);
            if (keep < msgs.length) {
              ctx.reject({
                step: 'format',
                reason: 'format.trimmed_trailing_turns',
                action: 'changed',
                source: row.source,
                row,
                detail: { kept_turns: keep, trimmed: msgs.slice(keep) },
              });
              msgs = msgs.slice(0, keep);
              row = { ...row, messages: msgs };
            }
          }
          const problems = conversationProblems(withSystemPrompt(row, out)[field] ?? [], field === 'prompt').filter(
            (p) => p.severity === 'error',
          );
          if (problems.length) {
            drop(`format.${problems[0]!.code}`, { problems: problems.map((p) => p.message) });
            continue;
          }
        } else if (kind === 'text' || kind === 'classification') {
          if (!row.text || row.text.trim() === '') {
            drop('format.empty_text');
            continue;
          }
        }
        if (out.keep_meta !== true) {
          const keep = out.keep_meta === false ? [] : out.keep_meta;
          const meta: Record<string, unknown> = {};
          for (const k of keep) if (row.meta[k] !== undefined) meta[k] = row.meta[k];
          // dup_cluster is how the split keeps near-duplicates together; it must survive until then.
          if (row.meta.dup_cluster !== undefined) meta.dup_cluster = row.meta.dup_cluster;
          row = { ...row, meta };
        }
        if (out.cutoff_len !== undefined && countTokens) {
          const tokens = await rowTokens(withSystemPrompt(row, out), countTokens);
          if (tokens > out.cutoff_len) {
            drop('format.too_long', { tokens, cutoff_len: out.cutoff_len });
            continue;
          }
        }
        try {
          exportRow(withSystemPrompt(row, out), fmt);
        } catch (e) {
          if (!(e instanceof LoomError)) throw e;
          drop('format.export', { error: e.message });
          continue;
        }
        yield row;
      }
    },
  };
}

/**
 * How many turns to keep so the conversation ends with its last assistant turn: real exports often end with a
 * customer's "thanks" or an unanswered follow-up, and dropping the whole dialogue for that loses every answer
 * before it. A conversation with no assistant turn keeps everything (the lint then rejects it as unanswered).
 */
function answeredLength(msgs: readonly Message[]): number {
  for (let i = msgs.length - 1; i >= 0; i--) if (msgs[i]!.role === 'assistant') return i + 1;
  return msgs.length;
}

/** The row as written: with the configured system prompt in front of its conversation (unless it has one). */
export function withSystemPrompt(row: DataRow, out: DataConfig['output']): DataRow {
  if (out.system_prompt === undefined || out.system_mode === 'keep') return row;
  const field = row.messages ? 'messages' : row.prompt ? 'prompt' : undefined;
  if (!field) return row;
  const msgs = row[field]!;
  if (msgs[0]?.role === 'system') return row;
  return { ...row, [field]: [{ role: 'system', content: out.system_prompt }, ...msgs] };
}
