// `backend: gguf` (llama.cpp through node-llama-cpp 3.21.1) and `loom serve <file.gguf | onnx-export-folder>`,
// driven by the official openai SDK. The GGUF is made by `loom export --format gguf` from a tiny random model this
// test builds; greedy completions are checked against Loom's own engine on the source folder (a different
// implementation: llama.cpp's ggml kernels vs ONNX Runtime), the ONNX export folder against the same reference.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { type RunningServer, resolveServeConfig, startServe } from '../../src/cli/serve.ts';
import { exportArtefact } from '../../src/export/export.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { generateText } from '../../src/generate/generate.ts';
import { LoomTokenizer } from '../../src/tokenizer/tokenizer.ts';
import { makeTinyModel, QWEN2 } from '../export/tiny-models.ts';

let work: string;
let dir: string;
let gguf: string;
let server: RunningServer;
let client: OpenAI;
const PROMPT = 'hello world, the';

/** Loom's engine, greedy, on the source safetensors folder: the reference text for a raw prompt. */
async function loomGreedy(folder: string, prompt: string, maxNewTokens: number): Promise<string> {
  const lm = await CausalLM.load(folder, { threads: 1 });
  try {
    const tok = LoomTokenizer.fromFolder(folder);
    const ids = await tok.encode(prompt, { addSpecialTokens: true });
    const [r] = await generateText(lm, tok, [ids], { maxNewTokens, temperature: 0 });
    return r!.text;
  } finally {
    await lm.close();
  }
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'loom-serve-gguf-'));
  process.env.LOOM_REGISTRY = join(work, 'registry.db');
  dir = makeTinyModel(work, 'tiny', QWEN2[1]);
  gguf = exportArtefact({
    input: dir,
    format: 'gguf',
    dtype: 'fp32',
    out: join(work, 'gguf'),
    skipCheck: true,
  }).artefact;
  const yaml = join(work, 'serve.yaml');
  writeFileSync(yaml, `models:\n  - { name: g, backend: gguf, path: ${JSON.stringify(gguf)}, threads: 1 }\n`);
  server = await startServe(yaml, { port: 0, logLevel: 'silent', requestLog: false });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

test('completions: greedy text equals Loom’s engine on the source folder; max_tokens ends with length', async () => {
  const r = await client.completions.create({ model: 'g', prompt: PROMPT, max_tokens: 10, temperature: 0 });
  const ref = await loomGreedy(dir, PROMPT, 10);
  assert.equal(r.choices[0]!.text, ref);
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.usage?.completion_tokens, 10);
  assert.ok((r.usage?.prompt_tokens ?? 0) > 0);
});

test('chat: streamed deltas add up to the non-streamed reply; include_usage; stop cuts before the stop string', async () => {
  const messages = [
    { role: 'system' as const, content: 'be brief' },
    { role: 'user' as const, content: 'hello there' },
  ];
  const whole = await client.chat.completions.create({ model: 'g', messages, max_tokens: 12, temperature: 0 });
  const text = whole.choices[0]!.message.content ?? '';
  assert.ok(text.length > 4, `reply too short to test with: ${JSON.stringify(text)}`);
  assert.equal(whole.usage?.completion_tokens, 12);
  const stream = await client.chat.completions.create({
    model: 'g',
    messages,
    max_tokens: 12,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = '';
  let usage: OpenAI.CompletionUsage | undefined | null;
  let finish: string | null | undefined;
  for await (const c of stream) {
    streamed += c.choices[0]?.delta.content ?? '';
    finish ??= c.choices[0]?.finish_reason;
    usage ??= c.usage;
  }
  assert.equal(streamed, text);
  assert.equal(finish, 'length');
  assert.equal(usage?.completion_tokens, 12);
  // A stop string from the middle of the greedy reply: the reply ends right before it.
  const stop = text.slice(3, 5);
  const cut = await client.chat.completions.create({ model: 'g', messages, max_tokens: 12, temperature: 0, stop });
  assert.equal(cut.choices[0]!.message.content, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.choices[0]!.finish_reason, 'stop');
});

test('temperature + seed: the same seed repeats, another seed differs', async () => {
  const ask = (seed: number) =>
    client.completions
      .create({ model: 'g', prompt: PROMPT, max_tokens: 16, temperature: 1, seed })
      .then((r) => r.choices[0]!.text);
  const a = await ask(7);
  assert.equal(await ask(7), a);
  assert.notEqual(await ask(8), a);
});

test('response_format: json_schema output parses and matches; json_object parses; logprobs refused with 400', async () => {
  const schema = {
    type: 'object',
    properties: { ok: { type: 'boolean' }, n: { type: 'integer' } },
    required: ['ok', 'n'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model: 'g',
    messages: [{ role: 'user', content: 'answer in JSON' }],
    max_tokens: 64,
    temperature: 0,
    response_format: { type: 'json_schema', json_schema: { name: 'answer', schema } },
  });
  const v = JSON.parse(r.choices[0]!.message.content ?? '') as { ok: unknown; n: unknown };
  assert.equal(typeof v.ok, 'boolean');
  assert.ok(Number.isInteger(v.n));
  const j = await client.chat.completions.create({
    model: 'g',
    messages: [{ role: 'user', content: 'answer in JSON' }],
    max_tokens: 200,
    temperature: 0.7,
    seed: 1,
    response_format: { type: 'json_object' },
  });
  // Seeded: this reply is a closed object ("{ }" at the time of writing), so it must parse whole.
  assert.equal(j.choices[0]!.finish_reason, 'stop');
  assert.equal(typeof JSON.parse(j.choices[0]!.message.content ?? ''), 'object');
  await assert.rejects(
    client.chat.completions.create({ model: 'g', messages: [{ role: 'user', content: 'x' }], logprobs: true }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.code === 'unsupported_parameter',
  );
});

test('loom serve <file.gguf> and <onnx-export-folder> serve directly under the file/folder name', async () => {
  const g = resolveServeConfig(gguf).config.models[0]!;
  assert.deepEqual([g.name, g.backend], ['tiny-F32', 'gguf']);
  const onnx = exportArtefact({ input: dir, format: 'onnx', dtype: 'fp32', out: join(work, 'onnx'), skipCheck: true });
  const s = await startServe(onnx.artefact, { port: 0, logLevel: 'silent', requestLog: false });
  try {
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const r = await c.completions.create({ model: 'onnx', prompt: PROMPT, max_tokens: 10, temperature: 0 });
    assert.equal(r.choices[0]!.text, await loomGreedy(dir, PROMPT, 10));
  } finally {
    await s.close();
  }
});
