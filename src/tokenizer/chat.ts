/**
 * Chat templates: the model's own (tokenizer_config.json `chat_template`, rendered with @huggingface/jinja) or a
 * built-in one for models that lack it, and conversation -> token ids with a per-token loss weight for training.
 *
 * API:
 *   BUILTIN_TEMPLATES: { chatml, llama3, llama2, mistral }   (jinja source; chatml is also Qwen's layout)
 *   resolveTemplate(tok, name?) -> string       name = 'auto' (model's own, else builtinTemplateFor(tok)) | builtin
 *                                               name | jinja source
 *   renderChat(template, messages, { addGenerationPrompt?, bosToken?, eosToken?, tools?, extra? }) -> string
 *   applyChatTemplate(tok, messages, { addGenerationPrompt?, template? }) -> string
 *   encodeChat(tok, messages, { template?, addGenerationPrompt? }) -> Promise<{ ids, weights, text, method }>
 *     weights[i] is the loss weight of token i: the message's loss_weight (assistant turns default 1, others 0).
 *     Spans are found by rendering prefixes of the conversation (each must be a prefix of the full render), or,
 *     for templates that rewrite earlier turns (Qwen3 drops old reasoning), by locating each message's content
 *     in the full render. Segments are tokenized separately and the concatenation is checked against tokenizing
 *     the whole text; if BPE merges across a boundary, the mask is taken from token offsets instead.
 */
import { Template } from '@huggingface/jinja';
import { LoomError } from '../core/errors.ts';
import type { Message } from '../core/types.ts';
import type { LoomTokenizer } from './tokenizer.ts';

export const BUILTIN_TEMPLATES = {
  chatml:
    "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}",
  llama3:
    '{{- bos_token }}{%- for message in messages %}' +
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}" +
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
  llama2:
    "{%- if messages[0]['role'] == 'system' %}{%- set system = '<<SYS>>\\n' + messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}" +
    '{%- set loop_messages = messages[1:] %}{%- else %}{%- set system = "" %}{%- set loop_messages = messages %}{%- endif %}' +
    '{%- for message in loop_messages %}' +
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}" +
    "{%- if message['role'] == 'user' %}{%- if loop.first %}{%- set content = system + message['content'] | trim %}{%- else %}{%- set content = message['content'] | trim %}{%- endif %}" +
    "{{- bos_token + '[INST] ' + content + ' [/INST]' }}" +
    "{%- else %}{{- ' ' + message['content'] | trim + ' ' + eos_token }}{%- endif %}{%- endfor %}",
  mistral:
    "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] + '\\n\\n' %}{%- set loop_messages = messages[1:] %}" +
    '{%- else %}{%- set system = "" %}{%- set loop_messages = messages %}{%- endif %}{{- bos_token }}' +
    '{%- for message in loop_messages %}' +
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}" +
    "{%- if message['role'] == 'user' %}{%- if loop.first %}{%- set content = system + message['content'] %}{%- else %}{%- set content = message['content'] %}{%- endif %}" +
    "{{- '[INST] ' + content + ' [/INST]' }}{%- else %}{{- message['content'] + eos_token }}{%- endif %}{%- endfor %}",
} as const;

export type BuiltinTemplate = keyof typeof BUILTIN_TEMPLATES;

export interface RenderOptions {
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  tools?: unknown[];
  /** Further template variables (e.g. enable_thinking for Qwen3). */
  extra?: Record<string, unknown>;
}

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (e) {
      throw new LoomError('TEMPLATE', `chat template does not parse: ${(e as Error).message}`, { cause: e });
    }
    compiled.set(source, t);
  }
  return t;
}

export function renderChat(template: string, messages: readonly Message[], opts: RenderOptions = {}): string {
  const t = compile(template);
  try {
    return t.render({
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: opts.bosToken ?? '',
      eos_token: opts.eosToken ?? '',
      ...(opts.tools ? { tools: opts.tools } : {}),
      ...opts.extra,
    });
  } catch (e) {
    throw new LoomError('TEMPLATE', `chat template failed: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The built-in template whose markers the vocabulary has, for a model without a chat_template: Llama 3 headers,
 * ChatML's <|im_start|>, Mistral's [INST] control token, else llama2 for sentencepiece `<s>` models, else chatml.
 */
export function builtinTemplateFor(tok: LoomTokenizer): BuiltinTemplate {
  if (tok.tokenToId('<|start_header_id|>') !== null && tok.tokenToId('<|eot_id|>') !== null) return 'llama3';
  if (tok.tokenToId('<|im_start|>') !== null) return 'chatml';
  if (tok.tokenToId('[INST]') !== null) return 'mistral';
  if (tok.bos?.token === '<s>') return 'llama2';
  return 'chatml';
}

/** 'auto' = the model's own template, else the built-in one its vocabulary suits; a builtin name; or jinja source. */
export function resolveTemplate(tok: LoomTokenizer, name = 'auto'): string {
  if (name === 'auto') return tok.chatTemplate ?? BUILTIN_TEMPLATES[builtinTemplateFor(tok)];
  if (name in BUILTIN_TEMPLATES) return BUILTIN_TEMPLATES[name as BuiltinTemplate];
  if (name.includes('{')) return name;
  throw new LoomError('TEMPLATE', `unknown chat template '${name}'`, {
    field: 'template',
    hint: `auto, ${Object.keys(BUILTIN_TEMPLATES).join(', ')}, or jinja source`,
  });
}

export function applyChatTemplate(
  tok: LoomTokenizer,
  messages: readonly Message[],
  opts: { addGenerationPrompt?: boolean; template?: string; extra?: Record<string, unknown> } = {},
): string {
  return renderChat(resolveTemplate(tok, opts.template), messages, {
    addGenerationPrompt: opts.addGenerationPrompt,
    bosToken: tok.bos?.token,
    eosToken: tok.eos?.token,
    extra: opts.extra,
  });
}

export interface EncodedChat {
  ids: number[];
  /** Per-token loss weight (0 = not trained). */
  weights: number[];
  text: string;
  /** How the trained spans were found. */
  method: 'prefix' | 'locate';
}

interface Span {
  start: number;
  end: number;
  weight: number;
}

function weightOf(m: Message): number {
  return m.loss_weight ?? (m.role === 'assistant' ? 1 : 0);
}

/** Ends a span right after an end-of-turn token: the newline a template puts after it is not the model's to learn. */
function trimAfterEndToken(text: string, span: Span, endTokens: string[]): Span {
  const seg = text.slice(span.start, span.end);
  const trimmed = seg.replace(/\s+$/u, '');
  if (endTokens.some((t) => t && trimmed.endsWith(t))) return { ...span, end: span.start + trimmed.length };
  return span;
}

function spansByPrefix(
  render: (msgs: readonly Message[], gen: boolean) => string,
  messages: readonly Message[],
  full: string,
): Span[] | null {
  const spans: Span[] = [];
  for (let k = 0; k < messages.length; k++) {
    const m = messages[k] as Message;
    const w = weightOf(m);
    if (w <= 0) continue;
    let before: string;
    try {
      before = render(messages.slice(0, k), m.role === 'assistant');
    } catch {
      before = '';
    }
    const upto = render(messages.slice(0, k + 1), false);
    if (!upto.startsWith(before) || !full.startsWith(upto)) return null;
    spans.push({ start: before.length, end: upto.length, weight: w });
  }
  return spans;
}

function spansByLocating(messages: readonly Message[], full: string, endTokens: string[]): Span[] {
  const spans: Span[] = [];
  let cursor = 0;
  for (const m of messages) {
    const content = m.content.trim();
    const idx = content ? full.indexOf(content, cursor) : -1;
    if (idx < 0) {
      if (weightOf(m) > 0 && content) {
        throw new LoomError(
          'TEMPLATE',
          `cannot find a ${m.role} turn in the rendered chat (the template rewrites it)`,
          {
            hint: 'use a built-in template (template: chatml) for training',
          },
        );
      }
      continue;
    }
    let end = idx + content.length;
    const rest = full.slice(end);
    const endTok = endTokens.find((t) => t && rest.startsWith(t));
    if (endTok) end += endTok.length;
    if (weightOf(m) > 0) spans.push({ start: idx, end, weight: weightOf(m) });
    cursor = end;
  }
  return spans;
}

/** Conversation -> ids with per-token loss weights (see the file header). */
export async function encodeChat(
  tok: LoomTokenizer,
  messages: readonly Message[],
  opts: { template?: string; addGenerationPrompt?: boolean; extra?: Record<string, unknown> } = {},
): Promise<EncodedChat> {
  const template = resolveTemplate(tok, opts.template);
  const render = (msgs: readonly Message[], gen: boolean): string =>
    renderChat(template, msgs, {
      addGenerationPrompt: gen,
      bosToken: tok.bos?.token,
      eosToken: tok.eos?.token,
      extra: opts.extra,
    });
  const full = render(messages, opts.addGenerationPrompt ?? false);
  const endTokens = [
    ...new Set([tok.eos?.token ?? '', ...tok.eosIds.map((id) => tok.idToToken(id) ?? '')].filter(Boolean)),
  ];
  let method: EncodedChat['method'] = 'prefix';
  let spans = spansByPrefix(render, messages, full);
  if (!spans) {
    method = 'locate';
    spans = spansByLocating(messages, full, endTokens);
  }
  spans = spans.map((s) => trimAfterEndToken(full, s, endTokens)).sort((a, b) => a.start - b.start);

  // Segment text at span edges, tokenize each piece, and check the pieces join to the whole.
  const ids: number[] = [];
  const weights: number[] = [];
  let pos = 0;
  const pieces: { text: string; weight: number }[] = [];
  for (const s of spans) {
    if (s.start < pos) continue;
    if (s.start > pos) pieces.push({ text: full.slice(pos, s.start), weight: 0 });
    pieces.push({ text: full.slice(s.start, s.end), weight: s.weight });
    pos = s.end;
  }
  if (pos < full.length) pieces.push({ text: full.slice(pos), weight: 0 });
  for (const p of pieces) {
    const pid = await tok.encode(p.text);
    ids.push(...pid);
    for (let i = 0; i < pid.length; i++) weights.push(p.weight);
  }
  const whole = await tok.encode(full);
  const same = whole.length === ids.length && whole.every((v, i) => v === ids[i]);
  if (same) return { ids, weights, text: full, method };

  // BPE merged across a boundary: map spans onto the whole text's tokens by their code-point offsets.
  const { ids: wids, offsets } = await tok.encodeWithOffsets(full);
  const cpIndex = (utf16: number): number => Array.from(full.slice(0, utf16)).length;
  const cpSpans = spans.map((s) => ({ start: cpIndex(s.start), end: cpIndex(s.end), weight: s.weight }));
  const w = offsets.map(([a]) => cpSpans.find((s) => a >= s.start && a < s.end)?.weight ?? 0);
  return { ids: wids, weights: w, text: full, method };
}
