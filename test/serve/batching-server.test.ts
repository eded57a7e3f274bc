// `loom serve` with continuous batching on a local model, driven over HTTP by the official `openai` SDK: eight
// concurrent greedy chats must get the replies they get one after another; with every slot busy and the queue
// full a request is refused at once with 429 + Retry-After; a client that disconnects frees its slot for the
// queued request.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { type RunningServer, startServe } from '../../src/cli/serve.ts';
import { createModelFolder } from '../../src/models/folder.ts';

let work: string;
let dir: string;
const servers: RunningServer[] = [];

before(() => {
  work = mkdtempSync(join(tmpdir(), 'loom-batching-'));
  dir = join(work, 'tiny');
  createModelFolder(dir, { preset: 'tiny', seed: 5, overrides: { initializer_range: 0.2 } });
});

after(async () => {
  for (const s of servers) await s.close();
  rmSync(work, { recursive: true, force: true });
});

async function serve(overrides: string[]): Promise<{ url: string; client: OpenAI }> {
  const s = await startServe(dir, {
    registry: join(work, 'registry.db'),
    port: 0,
    logLevel: 'silent',
    requestLog: false,
    overrides,
  });
  servers.push(s);
  return { url: s.url, client: new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 }) };
}

// With this model and seed, greedy chat(0) runs to max_tokens (no EOS in its first 400 tokens); chat(1) stops at 15.
const chat = (i: number) => [{ role: 'user' as const, content: `question number ${i}: ${'why '.repeat(i % 4)}` }];

test('8 concurrent greedy chats equal the same 8 served one after another', async () => {
  const { client } = await serve(['models.0.threads=1', 'models.0.concurrency=8']);
  const ask = (i: number) =>
    client.chat.completions.create({ model: 'tiny', messages: chat(i), max_tokens: 16 + i, temperature: 0 });
  const sequential = [];
  for (let i = 0; i < 8; i++) sequential.push(await ask(i));
  const concurrent = await Promise.all(Array.from({ length: 8 }, (_, i) => ask(i)));
  assert.deepEqual(
    concurrent.map((r) => r.choices[0]?.message.content),
    sequential.map((r) => r.choices[0]?.message.content),
  );
  assert.deepEqual(
    concurrent.map((r) => r.usage?.completion_tokens),
    sequential.map((r) => r.usage?.completion_tokens),
  );
  assert.ok(
    sequential.some((r) => (r.choices[0]?.message.content ?? '').length > 0),
    'replies are not all empty',
  );
});

test('slots full + queue full -> 429 with Retry-After; a disconnect frees its slot for the queued request', async () => {
  const { url, client } = await serve(['models.0.threads=1', 'models.0.concurrency=2', 'limits.queue=1']);
  const aborts = [new AbortController(), new AbortController()];
  // Two long streams hold both slots: wait for their first chunk so they are generating.
  const streams = await Promise.all(
    aborts.map((a) =>
      client.chat.completions.create(
        { model: 'tiny', messages: chat(0), max_tokens: 1000, temperature: 0, stream: true },
        { signal: a.signal },
      ),
    ),
  );
  const iters = streams.map((s) => s[Symbol.asyncIterator]());
  await Promise.all(iters.map((it) => it.next()));
  const post = () =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: chat(2), max_tokens: 4, temperature: 0 }),
    });
  const queued = post(); // waits in the queue
  await new Promise((r) => setTimeout(r, 50));
  const refused = await post();
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '1');
  const body = (await refused.json()) as { error: { type: string; code: string } };
  assert.equal(body.error.type, 'rate_limit_error');
  assert.equal(body.error.code, 'queue_full');
  // The clients go away mid-stream: their rows leave the batch and the queued request gets a slot.
  for (const a of aborts) a.abort();
  const r = await queued;
  assert.equal(r.status, 200);
  assert.equal((await fetch(`${url}/health`)).status, 200);
});

test('a request past limits.timeout_ms gets 504 and leaves the batch; its neighbour and the next request go on', async () => {
  const { client, url } = await serve(['models.0.threads=1', 'models.0.concurrency=2', 'limits.timeout_ms=150']);
  const ask = (max: number) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: chat(0), max_tokens: max, temperature: 0 }),
    });
  // The first request also builds the decoder session, which may take longer than the timeout on a loaded machine.
  for (let i = 0; i < 20 && (await ask(2)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  const [long, short] = await Promise.all([ask(1000), ask(4)]);
  assert.equal(long.status, 504);
  assert.equal(((await long.json()) as { error: { code: string } }).error.code, 'timeout');
  assert.equal(short.status, 200);
  const after = await client.chat.completions.create({ model: 'tiny', messages: chat(3), max_tokens: 4 });
  assert.equal(after.choices.length, 1);
});
