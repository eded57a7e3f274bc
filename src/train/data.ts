import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LoomError } from '../core/errors.ts';
import type { Message } from '../core/types.ts';
import { conversationProblems } from '../data/lint.ts';
import { encodeChat } from '../tokenizer/chat.ts';
import type { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import type { TokenizedExample } from './batching.ts';

/**
 * Dataset files → tokenized examples. SFT rows are canonical messages JSONL (`{"messages":[{role, content,
 * loss_weight?}]}`), rendered by the chat template with loss on assistant turns (or every turn with
 * train_on_prompt); pretraining rows are `{"text"}`; classification rows `{"text","label"}`. Bad rows fail with
 * file:line and the reason.
 */
export interface LoadedRows {
  rows: { messages?: Message[]; text?: string; label?: string; file: string; line: number }[];
  /** sha256 over the files' bytes, in order (lineage). */
  hash: string;
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

export function readRows(paths: readonly string[], baseDir: string, stage: 'pt' | 'sft' | 'cls'): LoadedRows {
  const h = createHash('sha256');
  const rows: LoadedRows['rows'] = [];
  for (const p of paths) {
    const file = resolve(baseDir, p);
    if (!existsSync(file)) {
      throw new LoomError('INPUT_NOT_FOUND', `dataset file not found: ${p}`, { file: p, field: 'dataset' });
    }
    const buf = readFileSync(file);
    h.update(buf);
    const lines = buf.toString('utf8').split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch (e) {
        throw new LoomError('INPUT_MALFORMED', `not valid JSON: ${(e as Error).message}`, { file, line: i + 1 });
      }
      if (stage === 'cls') {
        if (typeof obj.text !== 'string' || obj.text.trim() === '') {
          throw new LoomError('DATA_LINT', 'classification rows need a non-empty "text" string', {
            file,
            line: i + 1,
            field: 'text',
            hint: 'one {"text": "...", "label": "..."} object per line',
          });
        }
        const label = typeof obj.label === 'number' ? String(obj.label) : obj.label;
        if (typeof label !== 'string' || label === '') {
          throw new LoomError('DATA_LINT', 'classification rows need a "label" (string or integer)', {
            file,
            line: i + 1,
            field: 'label',
          });
        }
        rows.push({ text: obj.text, label, file, line: i + 1 });
        return;
      }
      if (stage === 'pt') {
        const text = typeof obj.text === 'string' ? obj.text : undefined;
        if (text === undefined) {
          throw new LoomError('DATA_LINT', 'pretraining rows need a "text" string', {
            file,
            line: i + 1,
            field: 'text',
          });
        }
        rows.push({ text, file, line: i + 1 });
        return;
      }
      const msgs = obj.messages;
      if (!Array.isArray(msgs) || msgs.length === 0) {
        throw new LoomError('DATA_LINT', 'sft rows need a non-empty "messages" array', {
          file,
          line: i + 1,
          field: 'messages',
          hint: 'convert alpaca/sharegpt data with `loom data` first',
        });
      }
      msgs.forEach((m: unknown, k) => {
        const mm = m as Record<string, unknown>;
        if (!mm || typeof mm.content !== 'string' || !ROLES.has(String(mm.role))) {
          throw new LoomError(
            'DATA_LINT',
            `message ${k}: needs role (system|user|assistant|tool) and a string content`,
            {
              file,
              line: i + 1,
              field: `messages.${k}`,
            },
          );
        }
        if (mm.loss_weight !== undefined && (typeof mm.loss_weight !== 'number' || mm.loss_weight < 0)) {
          throw new LoomError('DATA_LINT', `message ${k}: loss_weight must be a number >= 0`, {
            file,
            line: i + 1,
            field: `messages.${k}.loss_weight`,
          });
        }
      });
      // the data stage's linter: role order, empty turns, … (errors only; warnings do not block training)
      const problem = conversationProblems(msgs as Message[]).find((pr) => pr.severity === 'error');
      if (problem) {
        throw new LoomError('DATA_LINT', `${problem.code}: ${problem.message}`, {
          file,
          line: i + 1,
          hint: problem.fix,
        });
      }
      if (!msgs.some((m: Message) => (m.loss_weight ?? (m.role === 'assistant' ? 1 : 0)) > 0)) {
        throw new LoomError('DATA_LINT', 'row has no trained turn (no assistant message with loss_weight > 0)', {
          file,
          line: i + 1,
        });
      }
      rows.push({ messages: msgs as Message[], file, line: i + 1 });
    });
  }
  return { rows, hash: h.digest('hex') };
}

export interface EncodeOptions {
  template: string;
  trainOnPrompt: boolean;
}

export async function encodeSftRows(
  tok: LoomTokenizer,
  rows: LoadedRows['rows'],
  o: EncodeOptions,
): Promise<TokenizedExample[]> {
  const out: TokenizedExample[] = [];
  for (const r of rows) {
    const messages = o.trainOnPrompt
      ? r.messages!.map((m) => ({ ...m, loss_weight: m.loss_weight ?? 1 }))
      : r.messages!;
    try {
      const enc = await encodeChat(tok, messages, { template: o.template });
      out.push({ ids: enc.ids, weights: enc.weights });
    } catch (e) {
      if (e instanceof LoomError) {
        throw new LoomError('TEMPLATE', `template cannot render this row: ${e.message}`, {
          file: r.file,
          line: r.line,
          hint: e.hint ?? 'check the row against the template, or set template: chatml',
        });
      }
      throw new LoomError('TEMPLATE', `template cannot render this row: ${(e as Error).message}`, {
        file: r.file,
        line: r.line,
      });
    }
  }
  return out;
}

export async function encodeTextRows(tok: LoomTokenizer, rows: LoadedRows['rows']): Promise<number[][]> {
  const out: number[][] = [];
  for (const r of rows) out.push(await tok.encode(r.text!));
  return out;
}

/**
 * Classification rows → examples: the text tokenized as HF tokenizers do for a classifier (special tokens on, so
 * a bos is prepended where the tokenizer config asks for one), cut to the first cutoff_len tokens (HF's default
 * truncation side), the class id in `label`. A label outside `labels` names the file and line.
 */
export async function encodeClsRows(
  tok: LoomTokenizer,
  rows: LoadedRows['rows'],
  labels: readonly string[],
  cutoffLen: number,
): Promise<{ examples: TokenizedExample[]; truncated: number }> {
  const ids = new Map(labels.map((l, i) => [l, i]));
  const examples: TokenizedExample[] = [];
  let truncated = 0;
  for (const r of rows) {
    const label = ids.get(r.label!);
    if (label === undefined) {
      throw new LoomError('DATA_LINT', `label "${r.label}" is not one of the ${labels.length} classes`, {
        file: r.file,
        line: r.line,
        field: 'label',
        hint: `classes: ${labels.slice(0, 12).join(', ')}${labels.length > 12 ? ', …' : ''}; add it to labels: in the config`,
      });
    }
    let t = await tok.encode(r.text!, { addSpecialTokens: true });
    if (t.length === 0) throw new LoomError('DATA_LINT', 'text encodes to no tokens', { file: r.file, line: r.line });
    if (t.length > cutoffLen) {
      t = t.slice(0, cutoffLen);
      truncated++;
    }
    examples.push({ ids: t, weights: t.map(() => 0), label });
  }
  return { examples, truncated };
}
