// `loom serve` driven the way customers drive it: the official `openai` SDK and the Vercel `ai` SDK against a
// tiny model folder the test builds, plus raw HTTP for what SDKs never send (bad JSON, huge bodies).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { type RunningServer, startServe } from '../../src/cli/serve.ts';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { createModelFolder } from '../../src/models/folder.ts';

let work: string;
let dir: string;
let server: RunningServer;
let client: OpenAI;
let reference: LocalChatModel;
const MESSAGES = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'hello there' },
];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'loom-serve-'));
  dir = join(work, 'tiny');
  createModelFolder(dir, { preset: 'tiny', seed: 3, overrides: { initializer_range: 0.2 } });
  server = await startServe(dir, {
    // Keys live in the registry: a fresh one per run, so a developer's own keys never change these tests.
    registry: join(work, 'registry.db'),
    port: 0,
    logLevel: 'silent',
    overrides: ['models.0.threads=1', 'limits.max_body_bytes=65536'],
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  reference = await LocalChatModel.fromFolder(dir, { threads: 1 });
});

after(async () => {
  await server?.close();
  await reference?.close();
  rmSync(work, { recursive: true, force: true });
});

test('openai SDK: non-streaming chat equals the library generating in-process', async () => {
  const r = await client.chat.completions.create({ model: 'tiny', messages: MESSAGES, max_tokens: 12, temperature: 0 });
  const want = await reference.chat(MESSAGES, { maxNewTokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]?.message.content, want.text);
  assert.equal(r.choices[0]?.finish_reason, want.finishReason);
  assert.equal(r.usage?.prompt_tokens, want.usage.promptTokens);
  assert.equal(r.usage?.completion_tokens, want.usage.completionTokens);
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ['tiny'],
  );
});

test('openai SDK: streamed deltas add up to the non-streamed reply; include_usage sends a usage chunk', async () => {
  const body = { model: 'tiny', messages: MESSAGES, max_completion_tokens: 10, temperature: 0 };
  const whole = await client.chat.completions.create(body);
  const stream = await client.chat.completions.create({
    ...body,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage: OpenAI.CompletionUsage | null | undefined;
  let finish: string | null | undefined;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    text += c.choices[0]?.delta.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
    if (c.usage) usage = c.usage;
  }
  assert.ok(chunks >= 3, `role chunk, content, finish: got ${chunks}`);
  assert.equal(text, whole.choices[0]?.message.content);
  assert.equal(finish, whole.choices[0]?.finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test('openai SDK: completions endpoint with a raw prompt', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon', max_tokens: 5, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0]?.text, 'string');
  assert.ok((r.usage?.completion_tokens ?? 0) <= 5);
});

test('openai SDK: errors carry the OpenAI status, type, param and code', async () => {
  const fail = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      return e;
    }
    assert.fail('expected an error');
  };
  const missing = await fail(client.chat.completions.create({ model: 'nope', messages: MESSAGES }));
  assert.equal(missing.status, 404);
  assert.equal(missing.code, 'model_not_found');
  const traversal = await fail(client.chat.completions.create({ model: 'tiny:../../etc/passwd', messages: MESSAGES }));
  assert.equal(traversal.status, 404);
  const n2 = await fail(client.chat.completions.create({ model: 'tiny', messages: MESSAGES, n: 2 }));
  assert.equal(n2.status, 400);
  assert.equal(n2.param, 'n');
  const badType = await fail(
    client.chat.completions.create({ model: 'tiny', messages: MESSAGES, temperature: 'hot' as unknown as number }),
  );
  assert.equal(badType.status, 400);
  assert.equal(badType.param, 'temperature');
  assert.equal(badType.type, 'invalid_request_error');
  const tooMany = await fail(
    client.chat.completions.create({ model: 'tiny', messages: MESSAGES, max_tokens: 100_000 }),
  );
  assert.equal(tooMany.status, 400);
  assert.equal(tooMany.code, 'max_tokens_exceeded');
  const lp = await fail(client.chat.completions.create({ model: 'tiny', messages: MESSAGES, top_logprobs: 2 }));
  assert.equal(lp.status, 400);
  assert.equal(lp.param, 'top_logprobs');
  const schema = await fail(
    client.chat.completions.create({
      model: 'tiny',
      messages: MESSAGES,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } },
    }),
  );
  assert.equal(schema.code, 'unsupported_parameter');
  assert.equal(schema.param, 'response_format');
});

test('raw HTTP: malformed JSON 400, huge body 413, unknown route 404, all in the error envelope', async () => {
  const post = (body: string, path = '/v1/chat/completions') =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const shape = async (r: Response, status: number) => {
    assert.equal(r.status, status);
    const j = (await r.json()) as { error: { message: string; type: string; param: unknown; code: unknown } };
    assert.equal(typeof j.error.message, 'string');
    assert.ok(j.error.message.length > 0);
    assert.equal(typeof j.error.type, 'string');
    assert.ok('param' in j.error && 'code' in j.error);
  };
  await shape(await post('{"model":'), 400);
  await shape(await post('[1,2]'), 400);
  await shape(
    await post(JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] })),
    413,
  );
  await shape(await post('{}', '/v1/nothing'), 404);
  await shape(await post(JSON.stringify({ model: 'tiny', messages: [] })), 400);
  const h = await fetch(`${server.url}/health`);
  assert.equal(h.status, 200);
});

test('openai SDK: aborting mid-stream frees the slot and the server keeps answering', async () => {
  const ac = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'tiny', messages: MESSAGES, max_tokens: 200, stream: true },
    { signal: ac.signal },
  );
  let seen = 0;
  try {
    for await (const _ of stream) {
      if (++seen === 2) ac.abort();
    }
  } catch {
    // the SDK may end the iteration or raise an abort error: both are a client giving up
  }
  assert.ok(seen >= 2, 'the stream produced text before the abort');
  // The server sees the socket close and cancels generation: the request is recorded as 499, not finished.
  let m = '';
  for (let i = 0; i < 50 && !/status="499"\} 1/.test(m); i++) {
    await new Promise((r) => setTimeout(r, 20));
    m = await (await fetch(`${server.url}/metrics`)).text();
  }
  assert.match(m, /loom_requests_total\{route="\/v1\/chat\/completions",model="tiny",status="499"\} 1/);
  const r = await client.chat.completions.create({ model: 'tiny', messages: MESSAGES, max_tokens: 3 });
  assert.equal(r.choices.length, 1);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /loom_running_requests\{model="tiny"\} 0/);
  assert.match(metrics, /loom_time_to_first_token_seconds_count\{model="tiny"\} [1-9]/);
  assert.match(metrics, /loom_tokens_total\{direction="out",model="tiny"\} [1-9]/);
});

test('Vercel ai SDK through @ai-sdk/openai-compatible: generateText and streamText', async () => {
  const provider = createOpenAICompatible({ name: 'loom', baseURL: `${server.url}/v1`, includeUsage: true });
  const want = await reference.chat([{ role: 'user', content: 'hi' }], { maxNewTokens: 8, temperature: 0 });
  const g = await generateText({ model: provider('tiny'), prompt: 'hi', maxOutputTokens: 8, temperature: 0 });
  assert.equal(g.text, want.text);
  assert.equal(g.usage.outputTokens, want.usage.completionTokens);
  const s = streamText({ model: provider('tiny'), prompt: 'hi', maxOutputTokens: 8, temperature: 0 });
  let text = '';
  for await (const d of s.textStream) text += d;
  assert.equal(text, want.text);
});
