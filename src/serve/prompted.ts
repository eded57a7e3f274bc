/**
 * The prompt-only path in `loom serve`: a served model (local, upstream or gguf) with a versioned prompt file in
 * front of it. Each chat is rebuilt by the same `renderPrompt` evaluation uses, so what was scored is what is
 * served: the prompt's system text replaces the client's, its few-shot turns follow, and a `user` template gets
 * the client's last user message as `{{ input }}` (and `{{ question }}`). Plain completions pass through untouched.
 */
import type { PromptSpec } from '../config/eval.ts';
import type { ChatResult } from '../core/types.ts';
import { promptKey, renderPrompt } from '../eval/suite/prompts.ts';
import type { GenerateRequest, ServedModel } from './backends.ts';

export class PromptedBackend implements ServedModel {
  constructor(
    private readonly inner: ServedModel,
    readonly prompt: PromptSpec,
  ) {}
  get name(): string {
    return this.inner.name;
  }
  get backend(): ServedModel['backend'] {
    return this.inner.backend;
  }
  get adapters(): readonly string[] {
    return this.inner.adapters;
  }
  get fallback(): readonly string[] {
    return this.inner.fallback;
  }
  get limiter(): ServedModel['limiter'] {
    return this.inner.limiter;
  }
  /** `id@version`, as eval reports name the prompt. */
  get promptKey(): string {
    return promptKey(this.prompt);
  }
  generate(req: GenerateRequest): Promise<ChatResult> {
    if (!req.messages) return this.inner.generate(req);
    const input = req.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
    // `question` too, as evaluation's chat rows name it, so one prompt file renders the same in both.
    return this.inner.generate({ ...req, messages: renderPrompt(this.prompt, req.messages, { question: input }) });
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
