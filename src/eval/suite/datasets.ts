import { LoomError } from '../../core/errors.ts';
import type { Message } from '../../core/types.ts';
import { readJsonlRows } from '../metrics/run.ts';

/** One item to generate for: the conversation so far (without the answer) and its reference answers. */
export interface GenerationItem {
  id: string;
  context: Message[];
  /** Fields for the prompt's user template (`question`, plus any string fields of the row). */
  vars: Record<string, string>;
  references: string[];
}

export interface ClassificationItem {
  id: string;
  text: string;
  label: string;
}

function readJsonl(path: string): { line: number; value: Record<string, unknown> }[] {
  return readJsonlRows(path, 'dataset');
}

function stringFields(o: Record<string, unknown>): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string') vars[k] = v;
  return vars;
}

/**
 * Generation datasets: canonical messages JSONL (the last assistant turn is the reference, the turns before it
 * the context), or flat rows with a question (`question`/`input`/`prompt`) and `answer`/`reference`/`output`
 * or a `references` list.
 */
export function loadGenerationItems(path: string, limit?: number): GenerationItem[] {
  const items = readJsonl(path).map(({ line, value }): GenerationItem => {
    const id = typeof value.id === 'string' ? value.id : `${line}`;
    if (Array.isArray(value.messages)) {
      const msgs = value.messages as Message[];
      const last = msgs.map((m) => m.role).lastIndexOf('assistant');
      if (last < 0) {
        throw new LoomError('INPUT_FORMAT', 'row has no assistant turn to use as the reference', {
          file: path,
          line,
          hint: 'generation datasets need a final assistant answer',
        });
      }
      const context = msgs.slice(0, last);
      const question = [...context].reverse().find((m) => m.role === 'user')?.content ?? '';
      return { id, context, vars: { question }, references: [msgs[last]!.content] };
    }
    const question = [value.question, value.input, value.prompt, value.instruction].find(
      (v): v is string => typeof v === 'string',
    );
    const refs = Array.isArray(value.references)
      ? (value.references as unknown[]).filter((r): r is string => typeof r === 'string')
      : [value.answer, value.reference, value.output].filter((v): v is string => typeof v === 'string').slice(0, 1);
    if (question === undefined || refs.length === 0) {
      throw new LoomError('INPUT_FORMAT', 'row needs messages, or question/input/prompt and answer/reference/output', {
        file: path,
        line,
      });
    }
    return {
      id,
      context: [{ role: 'user', content: question }],
      vars: { ...stringFields(value), question },
      references: refs,
    };
  });
  return limit ? items.slice(0, limit) : items;
}

export function loadClassificationItems(path: string, labels: string[], limit?: number): ClassificationItem[] {
  const items = readJsonl(path).map(({ line, value }) => {
    if (typeof value.text !== 'string' || typeof value.label !== 'string') {
      throw new LoomError('INPUT_FORMAT', 'classification rows need string "text" and "label"', { file: path, line });
    }
    if (!labels.includes(value.label)) {
      throw new LoomError('INPUT_FORMAT', `label "${value.label}" is not in the task's labels`, {
        file: path,
        line,
        hint: `labels: ${labels.join(', ')}`,
      });
    }
    return { id: typeof value.id === 'string' ? value.id : `${line}`, text: value.text, label: value.label };
  });
  return limit ? items.slice(0, limit) : items;
}
