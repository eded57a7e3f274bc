/**
 * Which chat template an emitted job must use, decided by rendering, not by model_type: the template Loom trains
 * with (the model's own `chat_template`, a built-in, or Jinja source) is rendered on three probe conversations
 * and compared with what each candidate of the target trainer renders for them.
 *
 * - LLaMA-Factory: its templates are Python slot lists (hiyouga/LLaMA-Factory src/llamafactory/data/template.py @
 *   ff6d4d1, transcribed below for the families in use) rendered here the way `Template._encode` /
 *   `Llama2Template._encode` / `ReasoningTemplate` join them. A template that renders every probe identically is
 *   named; one that matches single-turn probes only is named with a warning; with no match, `template` is left
 *   unset — LLaMA-Factory then parses the tokenizer's own chat template (`parse_template`) — and the Jinja source is
 *   written next to the job.
 * - Axolotl: `tokenizer_default` when Loom trains with the tokenizer's own template (Axolotl reads the same
 *   string); otherwise a vendored Axolotl template that renders identically (chatml, llama3, phi_3 from
 *   axolotl-ai-cloud/axolotl src/axolotl/utils/chat_templates/templates @ 067b021), else `chat_template: jinja`
 *   with `chat_template_jinja` holding the source.
 * - TRL: the script sets `tokenizer.chat_template` when Loom's template is not the tokenizer's own.
 *
 * "Identical" allows one thing: markup the candidate leaves out after the last assistant turn (some templates always
 * append a generation header), since no trained token or its context depends on it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message } from '../core/types.ts';
import { BUILTIN_TEMPLATES, type BuiltinTemplate, renderChat } from '../tokenizer/chat.ts';

/** The template Loom trains with for a config, and where it came from. */
export interface EffectiveTemplate {
  /** Jinja source, or undefined when the config names a trainer template Loom does not know (passed through). */
  source?: string;
  /** `model`: tokenizer_config.json of the model folder; `builtin`: a Loom built-in; `config`: Jinja in the config. */
  origin: 'model' | 'builtin' | 'config' | 'name';
  /** The name as written in the config (auto, a built-in, a trainer template name). */
  name: string;
  bos?: string;
  eos?: string;
}

function tokenText(t: unknown): string | undefined {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof (t as { content?: unknown }).content === 'string')
    return (t as { content: string }).content;
  return undefined;
}

/** tokenizer_config.json's chat_template (string, or the `default` entry of a list), BOS and EOS strings. */
function readModelTemplate(modelDir: string): { source?: string; bos?: string; eos?: string } {
  const f = join(modelDir, 'tokenizer_config.json');
  if (!existsSync(f)) return {};
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
  const ct = cfg.chat_template;
  let source: string | undefined;
  if (typeof ct === 'string') source = ct;
  else if (Array.isArray(ct))
    source = (ct as { name?: string; template?: string }[]).find((x) => x.name === 'default')?.template;
  const jinjaFile = join(modelDir, 'chat_template.jinja');
  if (!source && existsSync(jinjaFile)) source = readFileSync(jinjaFile, 'utf8');
  return { source, bos: tokenText(cfg.bos_token), eos: tokenText(cfg.eos_token) };
}

/** tokenizer/chat.ts builtinTemplateFor from the tokenizer.json text (its markers as tokens), without loading it. */
function builtinByVocabulary(modelDir: string, bos: string | undefined): BuiltinTemplate {
  const f = join(modelDir, 'tokenizer.json');
  const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
  const has = (t: string) => text.includes(JSON.stringify(t));
  if (has('<|start_header_id|>') && has('<|eot_id|>')) return 'llama3';
  if (has('<|im_start|>')) return 'chatml';
  if (has('[INST]')) return 'mistral';
  if (bos === '<s>') return 'llama2';
  return 'chatml';
}

/** Mirrors tokenizer/chat.ts resolveTemplate without loading the tokenizer (the emitter may run far from it). */
export function effectiveTemplate(templateName: string, modelDir: string): EffectiveTemplate {
  const m = readModelTemplate(modelDir);
  const base = { name: templateName, bos: m.bos, eos: m.eos };
  if (templateName === 'auto') {
    if (m.source) return { ...base, source: m.source, origin: 'model' };
    const b = builtinByVocabulary(modelDir, m.bos);
    return { ...base, name: b, source: BUILTIN_TEMPLATES[b], origin: 'builtin' };
  }
  if (templateName in BUILTIN_TEMPLATES)
    return { ...base, source: BUILTIN_TEMPLATES[templateName as BuiltinTemplate], origin: 'builtin' };
  if (templateName.includes('{')) return { ...base, source: templateName, origin: 'config' };
  return { ...base, origin: 'name' };
}

const PROBES: Message[][] = [
  [
    { role: 'user', content: 'Where is order 12?' },
    { role: 'assistant', content: 'It ships today.' },
  ],
  [
    { role: 'system', content: 'You are a support agent.' },
    { role: 'user', content: 'Where is order 12?' },
    { role: 'assistant', content: 'It ships today.' },
  ],
  [
    { role: 'system', content: 'You are a support agent.' },
    { role: 'user', content: 'Where is order 12?' },
    { role: 'assistant', content: 'It ships today.' },
    { role: 'user', content: '谢谢，多久到？' },
    { role: 'assistant', content: '大约三天。' },
  ],
];
const PROBE_TEXTS = [...new Set(PROBES.flat().map((m) => m.content))];

/** Same training text: identical, or the reference only adds markup after the last trained token. */
function sameTraining(reference: string, candidate: string): boolean {
  if (reference === candidate) return true;
  if (!reference.startsWith(candidate)) return false;
  const rest = reference.slice(candidate.length);
  return !PROBE_TEXTS.some((p) => rest.includes(p));
}

function renderOr(source: string, msgs: Message[], bos?: string, eos?: string): string | undefined {
  try {
    return renderChat(source, msgs, { bosToken: bos, eosToken: eos });
  } catch {
    return undefined;
  }
}

type Slot = string | 'BOS' | 'EOS';
interface LfTemplate {
  name: string;
  prefix?: Slot[];
  system: Slot[];
  user: Slot[];
  assistant: Slot[];
  defaultSystem?: string;
  /** Llama2Template: the system text is put inside the first user turn. */
  fuseSystem?: boolean;
  /** ReasoningTemplate (enable_thinking default): an empty thought before every assistant turn without one. */
  reasoning?: boolean;
}

const IM_USER = '<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n';
const IM_ASSISTANT = '{{content}}<|im_end|>\n';
const IM_SYSTEM = '<|im_start|>system\n{{content}}<|im_end|>\n';
const L3_USER =
  '<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';

/** LLaMA-Factory templates (template.py @ ff6d4d1), in preference order when several render the same. */
const LF_TEMPLATES: LfTemplate[] = [
  { name: 'chatml', system: [IM_SYSTEM], user: [IM_USER], assistant: [IM_ASSISTANT] },
  {
    name: 'qwen',
    system: [IM_SYSTEM],
    user: [IM_USER],
    assistant: [IM_ASSISTANT],
    defaultSystem: 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.',
  },
  { name: 'qwen3', system: [IM_SYSTEM], user: [IM_USER], assistant: [IM_ASSISTANT], reasoning: true },
  {
    name: 'smollm2',
    system: [IM_SYSTEM],
    user: [IM_USER],
    assistant: [IM_ASSISTANT],
    defaultSystem: 'You are a helpful AI assistant named SmolLM, trained by Hugging Face.',
  },
  {
    name: 'llama3',
    prefix: ['BOS'],
    system: ['<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>'],
    user: [L3_USER],
    assistant: ['{{content}}<|eot_id|>'],
  },
  {
    name: 'llama2',
    system: ['<<SYS>>\n{{content}}\n<</SYS>>\n\n'],
    user: ['BOS', '[INST] {{content}} [/INST]'],
    assistant: ['{{content}}', 'EOS'],
    fuseSystem: true,
  },
  {
    name: 'mistral',
    prefix: ['BOS'],
    system: ['{{content}}\n\n'],
    user: ['[INST] {{content}}[/INST]'],
    assistant: [' {{content}}', 'EOS'],
    fuseSystem: true,
  },
  {
    name: 'gemma',
    prefix: ['BOS'],
    system: ['{{content}}\n\n'],
    user: ['<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n'],
    assistant: ['{{content}}<end_of_turn>\n'],
    fuseSystem: true,
  },
  {
    name: 'phi',
    system: ['<|system|>\n{{content}}<|end|>\n'],
    user: ['<|user|>\n{{content}}<|end|>\n<|assistant|>\n'],
    assistant: ['{{content}}<|end|>\n'],
  },
  {
    name: 'default',
    system: ['System: {{content}}', 'EOS', '\n'],
    user: ['Human: {{content}}', 'EOS', '\nAssistant:'],
    assistant: ['{{content}}', 'EOS', '\n'],
  },
];

/** Every template name LLaMA-Factory registers (template.py @ ff6d4d1): a config naming one is passed through. */
const LF_TEMPLATE_NAMES = new Set(
  'aeva alpaca bailing bailing_v2 breeze chatglm3 chatml chatml_de cohere cpm4 dbrx deepseek deepseek3 deepseekcoder deepseekr1 default dots_ocr empty ernie ernie_nothink ernie_vl exaone falcon falcon_h1 fewshot gemma gemma2 gemma3 gemma3n gemma4 gemma4n glm4 glm4_5v glm4_7 glm4_moe glm4v glm_ocr glmz1 gpt_oss granite3 granite3_vision granite4 hunyuan hunyuan_small hy3 hy_dense_1_8b hy_dense_7b index intern2 intern_s1 intern_vl keye_vl kimi_vl lfm2 lfm2_vl llama2 llama2_zh llama3 llama4 llava llava_next llava_next_llama3 llava_next_mistral llava_next_qwen llava_next_video llava_next_video_mistral llava_next_video_yi llava_next_yi mimo mimo_v2 mimo_vl minicpm_o minicpm_v minicpm_v_4_6 minimax1 minimax2 ministral ministral3 mistral mistral_small mllama moonlight moss_vl olmo openchat openchat-3.6 opencoder paligemma paligemma_chat phi phi4 phi4_mini phi_small pixtral qwen qwen2_audio qwen2_omni qwen2_vl qwen3 qwen3_5 qwen3_5_nothink qwen3_6 qwen3_nothink qwen3_omni qwen3_omni_nothink qwen3_vl qwen3_vl_nothink sailor seed_coder seed_oss smollm smollm2 solar starchat telechat2 vicuna video_llava xuanyuan yi yi_vl youtu youtu_vl yuan zephyr'.split(
    ' ',
  ),
);

/** Axolotl's ChatTemplate enum (src/axolotl/utils/schemas/enums.py @ 067b021). */
const AXOLOTL_TEMPLATE_NAMES = new Set(
  'alpaca chatml mistral_v1 mistral_v2v3 mistral_v3_tekken mistral_v7_tekken gemma cohere llama3 llama3_2_vision llama4 phi_3 phi_35 deepseek_v2 deepseek_v3 jamba jinja qwen_25 qwen3 qwen3_5 falcon_h1 nemotron_h tokenizer_default exaone exaone4 metharme pixtral llava qwen2_vl gemma3 gemma3n gemma4 gemma4_unified command_a command_a_tool_use command_a_rag aya'.split(
    ' ',
  ),
);

/** Axolotl's own Jinja for the families Loom's built-ins cover (Apache-2.0, copied verbatim). */
const AXOLOTL_TEMPLATES: Record<string, string> = {
  chatml:
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  llama3:
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set loop_messages = messages %}{% for message in loop_messages %}{% if message['content'] is string %}{% set message_text = message['content'] | trim %}{% else %}{% set message_text = message['content'] | selectattr('text', 'defined') | map(attribute='text') | join('') | trim %}{% endif %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message_text + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  phi_3:
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|system|>' + '\\n' + message['content'] + '<|end|>' + '\\n'}}{% elif (message['role'] == 'user') %}{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}{% elif message['role'] == 'assistant' %}{{message['content'] + '<|end|>' + '\\n'}}{% endif %}{% endfor %}",
};

/** LLaMA-Factory's rendering of a conversation as text (BOS/EOS slots as the tokenizer's strings). */
export function renderLlamaFactory(t: LfTemplate, msgs: readonly Message[], bos = '', eos = ''): string {
  const fill = (slots: Slot[], content: string): string =>
    slots.map((s) => (s === 'BOS' ? bos : s === 'EOS' ? eos : s.replace('{{content}}', content))).join('');
  const system = msgs[0]?.role === 'system' ? msgs[0].content : (t.defaultSystem ?? '');
  const conv = msgs[0]?.role === 'system' ? msgs.slice(1) : msgs;
  let out = '';
  conv.forEach((m, i) => {
    let sys = '';
    if (i === 0) {
      out += fill(t.prefix ?? [], '');
      if (system) sys = fill(t.system, system);
      if (!t.fuseSystem) out += sys;
    }
    if (m.role === 'user') out += fill(t.user, t.fuseSystem ? sys + m.content : m.content);
    else {
      if (t.reasoning && !m.content.includes('<think>')) out += '<think>\n\n</think>\n\n';
      out += fill(t.assistant, m.content);
    }
  });
  return out;
}

export interface TemplateChoice {
  /** The name to write; undefined = leave the key unset / write the Jinja source. */
  name?: string;
  /** `exact`: every probe renders the same; `single-turn`: only one-turn probes do; `none`. */
  match: 'exact' | 'single-turn' | 'none' | 'passthrough' | 'tokenizer';
  /** Jinja source to write next to the job (or inline) when no name is exact. */
  source?: string;
  warnings: string[];
}

function matchLevel(
  eff: EffectiveTemplate,
  render: (msgs: Message[]) => string | undefined,
): 'exact' | 'single-turn' | 'none' {
  const ok = PROBES.map((p) => {
    const ref = renderOr(eff.source!, p, eff.bos, eff.eos);
    const cand = render(p);
    return ref !== undefined && cand !== undefined && sameTraining(ref, cand);
  });
  return ok.every(Boolean) ? 'exact' : ok[0] && ok[1] ? 'single-turn' : 'none';
}

const ORIGIN: Record<EffectiveTemplate['origin'], string> = {
  model: "the model's chat template",
  builtin: 'Loom built-in template',
  config: 'the Jinja template in the config',
  name: 'template',
};

/** LLaMA-Factory `template:` for what Loom trains with. */
export function llamaFactoryTemplate(eff: EffectiveTemplate): TemplateChoice {
  if (eff.origin === 'name') {
    if (LF_TEMPLATE_NAMES.has(eff.name)) return { name: eff.name, match: 'passthrough', warnings: [] };
    return {
      name: eff.name,
      match: 'passthrough',
      warnings: [`template "${eff.name}" is not a LLaMA-Factory template name; LLaMA-Factory will refuse it`],
    };
  }
  const what =
    eff.origin === 'builtin' ? `${ORIGIN.builtin} "${eff.name === 'auto' ? 'chatml' : eff.name}"` : ORIGIN[eff.origin];
  let single: string | undefined;
  for (const t of LF_TEMPLATES) {
    const level = matchLevel(eff, (p) => renderLlamaFactory(t, p, eff.bos, eff.eos));
    if (level === 'exact') return { name: t.name, match: 'exact', warnings: [] };
    if (level === 'single-turn') single ??= t.name;
  }
  if (single) {
    return {
      name: single,
      match: 'single-turn',
      warnings: [
        `template: LLaMA-Factory "${single}" renders ${what} identically for one-turn conversations but not for multi-turn ones (e.g. where earlier turns' reasoning is dropped); check multi-turn data`,
      ],
    };
  }
  return {
    match: 'none',
    source: eff.source,
    warnings: [
      eff.origin === 'model'
        ? `template: no LLaMA-Factory template renders ${what} identically, so \`template\` is left unset and LLaMA-Factory parses the tokenizer's own chat template (parse_template); the source is in chat_template.jinja`
        : `template: no LLaMA-Factory template renders ${what} identically and LLaMA-Factory reads custom Jinja only from the tokenizer: put chat_template.jinja (written here) into the model's tokenizer_config.json as "chat_template"; \`template\` is left unset so LLaMA-Factory parses it`,
    ],
  };
}

/** Axolotl `chat_template` (and `chat_template_jinja`) for what Loom trains with. */
export function axolotlTemplate(eff: EffectiveTemplate): TemplateChoice {
  if (eff.origin === 'name') {
    return AXOLOTL_TEMPLATE_NAMES.has(eff.name)
      ? { name: eff.name, match: 'passthrough', warnings: [] }
      : {
          name: eff.name,
          match: 'passthrough',
          warnings: [`template "${eff.name}" is not an Axolotl chat_template name; Axolotl will refuse it`],
        };
  }
  if (eff.origin === 'model') return { name: 'tokenizer_default', match: 'tokenizer', warnings: [] };
  for (const [name, src] of Object.entries(AXOLOTL_TEMPLATES)) {
    if (matchLevel(eff, (p) => renderOr(src, p, eff.bos, eff.eos)) === 'exact')
      return { name, match: 'exact', warnings: [] };
  }
  return {
    name: 'jinja',
    match: 'none',
    source: eff.source,
    warnings: [
      `template: no Axolotl chat_template renders ${ORIGIN[eff.origin]} identically; the Jinja source is written as chat_template_jinja`,
    ],
  };
}
