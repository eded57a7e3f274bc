import { Template } from '@huggingface/jinja';
import type { PromptSpec } from '../../config/eval.ts';
import { LoomError } from '../../core/errors.ts';
import type { Message } from '../../core/types.ts';

/** `id@version`, the name under which a prompt's results are reported and compared. */
export function promptKey(p: PromptSpec): string {
  return `${p.id}@${p.version}`;
}

/**
 * Builds the messages sent to a model from a prompt version and an item: the prompt's system text replaces any
 * system turn in the item, few-shot turns follow it, and the user template (if any) replaces the last user turn.
 */
export function renderPrompt(p: PromptSpec, context: Message[], vars: Record<string, string>): Message[] {
  const out: Message[] = [];
  const itemSystem = context.find((m) => m.role === 'system');
  const system = p.system ?? itemSystem?.content;
  if (system) out.push({ role: 'system', content: system });
  for (const s of p.few_shot) {
    out.push({ role: 'user', content: s.user }, { role: 'assistant', content: s.assistant });
  }
  const turns = context.filter((m) => m.role !== 'system');
  if (p.user) {
    let rendered: string;
    try {
      // `input` is the last user turn unless the row names one: serve and eval fill a prompt file the same way.
      const input = context.filter((m) => m.role === 'user').at(-1)?.content ?? '';
      rendered = new Template(p.user).render({ input, ...vars });
    } catch (e) {
      throw new LoomError(
        'TEMPLATE',
        `prompt ${promptKey(p)}: user template does not render: ${(e as Error).message}`,
        {
          field: 'prompts.user',
        },
      );
    }
    const lastUser = turns.map((m) => m.role).lastIndexOf('user');
    if (lastUser >= 0) turns[lastUser] = { role: 'user', content: rendered };
    else turns.push({ role: 'user', content: rendered });
  }
  return [...out, ...turns.map((m) => ({ role: m.role, content: m.content }))];
}
