import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import type { Message } from '../../src/core/types.ts';
import {
  applyChatTemplate,
  BUILTIN_TEMPLATES,
  builtinTemplateFor,
  encodeChat,
  renderChat,
  resolveTemplate,
} from '../../src/tokenizer/chat.ts';
import { tinyTokenizerConfig, tinyTokenizerFiles } from '../../src/tokenizer/tiny.ts';
import { LoomTokenizer } from '../../src/tokenizer/tokenizer.ts';
import { fixtureTokenizer, fixtureTokenizerFiles, sentencepieceToyTokenizer } from './fixtures.ts';

const convo: Message[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Hi!' },
  { role: 'assistant', content: 'Hello! How can I help?' },
  { role: 'user', content: 'Where is my order?' },
  { role: 'assistant', content: 'It ships today.' },
];

/** Text of the tokens with weight > 0, joined per contiguous run. */
async function trainedRuns(tok: LoomTokenizer, ids: number[], weights: number[]): Promise<string[]> {
  const runs: string[] = [];
  let cur: number[] = [];
  for (let i = 0; i <= ids.length; i++) {
    if (i < ids.length && (weights[i] as number) > 0) cur.push(ids[i] as number);
    else if (cur.length) {
      runs.push(await tok.decode(cur));
      cur = [];
    }
  }
  return runs;
}

test('Qwen3 template from tokenizer_config.json renders the documented ChatML layout', () => {
  const t = fixtureTokenizer('qwen3');
  const text = applyChatTemplate(t, convo.slice(0, 2), { addGenerationPrompt: true });
  assert.equal(
    text,
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n',
  );
  // Qwen3 model card: enable_thinking=False adds an empty think block to the generation prompt.
  const noThink = applyChatTemplate(t, convo.slice(1, 2), {
    addGenerationPrompt: true,
    extra: { enable_thinking: false },
  });
  assert.equal(noThink, '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
});

test('Llama 3 template renders the documented header/eot layout with bos', () => {
  const t = fixtureTokenizer('llama3');
  const text = applyChatTemplate(t, convo.slice(0, 2), { addGenerationPrompt: true });
  assert.equal(
    text,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );
  // The built-in llama3 template gives the same text.
  assert.equal(
    renderChat(BUILTIN_TEMPLATES.llama3, convo.slice(0, 2), {
      addGenerationPrompt: true,
      bosToken: '<|begin_of_text|>',
    }),
    text,
  );
});

test('built-in chatml / llama3 prompts equal the real Qwen3 / Llama 3 templates on multi-turn conversations', () => {
  // Generation prompts (what `loom chat` renders): system or not, one or two user turns.
  for (const [name, builtin] of [
    ['qwen3', 'chatml'],
    ['llama3', 'llama3'],
  ] as const) {
    const t = fixtureTokenizer(name);
    for (const msgs of [convo.slice(0, 2), convo.slice(0, 4), convo.slice(1, 4)]) {
      assert.equal(
        applyChatTemplate(t, msgs, { addGenerationPrompt: true, template: builtin }),
        applyChatTemplate(t, msgs, { addGenerationPrompt: true }),
        `${name}, ${msgs.length} messages`,
      );
    }
  }
});

test('a model without chat_template gets the built-in template its vocabulary has markers for', () => {
  const strip = (name: 'qwen3' | 'llama3'): LoomTokenizer => {
    const { json, config } = fixtureTokenizerFiles(name);
    delete config.chat_template;
    return LoomTokenizer.fromStrings(json, config);
  };
  assert.equal(builtinTemplateFor(strip('llama3')), 'llama3');
  assert.equal(builtinTemplateFor(strip('qwen3')), 'chatml');
  assert.equal(builtinTemplateFor(sentencepieceToyTokenizer()), 'llama2');
  const llama = strip('llama3');
  assert.equal(llama.chatTemplate, null);
  assert.equal(resolveTemplate(llama), BUILTIN_TEMPLATES.llama3);
});

test('built-in chatml, llama2 and mistral templates match their documented formats', () => {
  const two: Message[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello' },
    { role: 'user', content: 'Bye' },
  ];
  const o = { bosToken: '<s>', eosToken: '</s>' };
  assert.equal(
    renderChat(BUILTIN_TEMPLATES.chatml, two, { addGenerationPrompt: true }),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n' +
      '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(
    renderChat(BUILTIN_TEMPLATES.llama2, two, o),
    '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Bye [/INST]',
  );
  assert.equal(
    renderChat(BUILTIN_TEMPLATES.mistral, two, o),
    '<s>[INST] Be brief.\n\nHi [/INST]Hello</s>[INST] Bye [/INST]',
  );
  assert.throws(
    () => renderChat(BUILTIN_TEMPLATES.mistral, [{ role: 'assistant', content: 'x' }], o),
    (e: unknown) => e instanceof LoomError && e.code === 'TEMPLATE' && /alternate/.test(e.message),
  );
});

test('encodeChat (Llama 3): only assistant replies and their <|eot_id|> are trained', async () => {
  const t = fixtureTokenizer('llama3');
  // This tokenizer_config's template always appends the assistant header, so prefixes are not prefixes
  // of the whole conversation: spans are located instead. The built-in llama3 template works by prefixes.
  for (const [template, method] of [
    ['auto', 'locate'],
    ['llama3', 'prefix'],
  ] as const) {
    const r = await encodeChat(t, convo, { template });
    assert.equal(r.method, method);
    assert.deepEqual(r.ids, await t.encode(r.text));
    assert.equal(r.ids[0], 128000);
    assert.deepEqual(await trainedRuns(t, r.ids, r.weights), [
      'Hello! How can I help?<|eot_id|>',
      'It ships today.<|eot_id|>',
    ]);
  }
});

test('encodeChat (Qwen3 rewrites earlier turns, locate method): assistant content + <|im_end|>', async () => {
  const t = fixtureTokenizer('qwen3');
  const r = await encodeChat(t, convo);
  assert.equal(r.method, 'locate');
  assert.deepEqual(r.ids, await t.encode(r.text));
  assert.deepEqual(await trainedRuns(t, r.ids, r.weights), [
    'Hello! How can I help?<|im_end|>',
    'It ships today.<|im_end|>',
  ]);
});

test('encodeChat honours per-message loss_weight', async () => {
  const t = fixtureTokenizer('qwen3');
  const msgs: Message[] = convo.map((m, i) =>
    i === 2 ? { ...m, loss_weight: 0 } : i === 4 ? { ...m, loss_weight: 0.5 } : m,
  );
  const r = await encodeChat(t, msgs, { template: 'chatml' });
  assert.equal(r.method, 'prefix');
  assert.deepEqual(await trainedRuns(t, r.ids, r.weights), ['It ships today.<|im_end|>']);
  assert.ok(r.weights.every((w) => w === 0 || w === 0.5));
});

test('encodeChat on the shipped tiny tokenizer: segments join exactly', async () => {
  const f = tinyTokenizerFiles();
  const t = LoomTokenizer.fromStrings(f['tokenizer.json'] as string, tinyTokenizerConfig());
  const r = await encodeChat(t, convo);
  assert.deepEqual(r.ids, await t.encode(r.text));
  assert.deepEqual(await trainedRuns(t, r.ids, r.weights), [
    'Hello! How can I help?<|im_end|>',
    'It ships today.<|im_end|>',
  ]);
});

test('encodeChat falls back to token offsets when BPE merges across a turn boundary', async () => {
  const t = fixtureTokenizer('llama3');
  const template = '{% for m in messages %}{{ m.content }}{% endfor %}';
  const msgs: Message[] = [
    { role: 'user', content: 'Hel' },
    { role: 'assistant', content: 'lo world' },
  ];
  const r = await encodeChat(t, msgs, { template });
  assert.equal(r.text, 'Hello world');
  assert.deepEqual(r.ids, [9906, 1917]);
  // "Hello" starts inside the user turn, " world" inside the assistant turn.
  assert.deepEqual(r.weights, [0, 1]);
});
