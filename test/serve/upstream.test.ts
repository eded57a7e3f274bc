// The upstream backend against fake OpenAI-compatible upstreams (a local fastify server): SSE passed through as it
// arrives, retries on 5xx, the fallback chain past a failing first upstream, the per-upstream timeout, and the
// per-upstream concurrency cap — all through the official openai SDK.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { type RunningServer, startServe } from '../../src/cli/serve.ts';

const WORDS = ['one ', 'two ', 'three'];
// Wide enough that a loaded 2-core machine cannot merge the deltas by accident (the check is first-to-last >= GAP).
const GAP_MS = 150;
let work: string;
let fake: FastifyInstance;
let server: RunningServer;
let client: OpenAI;
const calls: Record<string, number> = {};
const bodies: Record<string, unknown>[] = [];
let inFlight = 0;
let maxInFlight = 0;
let closedEarly = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'loom-serve-up-'));
  // forceCloseConnections: the gateway's keep-alive sockets to this fake would otherwise hold close() for
  // fastify's 72 s keepAliveTimeout (hijacked SSE replies leave them untracked as idle).
  fake = Fastify({ forceCloseConnections: true });
  fake.post<{ Params: { up: string }; Body: Record<string, unknown> }>(
    '/:up/v1/chat/completions',
    async (req, reply) => {
      const up = req.params.up;
      const n = (calls[up] = (calls[up] ?? 0) + 1);
      bodies.push(req.body);
      if (up === 'down') return reply.code(500).send({ error: { message: 'primary is down' } });
      if (up === 'flaky' && n === 1)
        return reply
          .code(503)
          .header('retry-after', '0')
          .send({ error: { message: 'busy' } });
      if (up === 'hang') {
        await sleep(3000);
        return reply.code(500).send({});
      }
      // An SSE stream, one word every GAP_MS, then a usage chunk and [DONE].
      reply.hijack();
      const raw = reply.raw;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let done = false;
      raw.on('close', () => {
        if (!done) closedEarly++;
      });
      raw.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (o: unknown) => raw.write(`data: ${JSON.stringify(o)}\n\n`);
      try {
        for (const w of WORDS) {
          if (raw.destroyed) return;
          chunk({ choices: [{ index: 0, delta: { content: w }, finish_reason: null }] });
          await sleep(GAP_MS);
        }
        chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
        chunk({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 3 } });
        done = true;
        raw.end('data: [DONE]\n\n');
      } finally {
        inFlight--;
      }
    },
  );
  await fake.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(fake.server.address() as { port: number }).port}`;
  const cfg = join(work, 'serve.yaml');
  writeFileSync(
    cfg,
    [
      'models:',
      `  - { name: primary, backend: upstream, base_url: "${base}/down/v1", model: m1, retries: 1, fallback: [backup] }`,
      `  - { name: backup, backend: upstream, base_url: "${base}/ok/v1", model: m2, concurrency: 2 }`,
      `  - { name: flaky, backend: upstream, base_url: "${base}/flaky/v1", model: m3, retries: 2 }`,
      `  - { name: hang, backend: upstream, base_url: "${base}/hang/v1", model: m4, retries: 0, timeout_ms: 300 }`,
    ].join('\n'),
  );
  server = await startServe(cfg, {
    registry: join(work, 'registry.db'),
    port: 0,
    logLevel: 'silent',
    requestLog: false,
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await server?.close();
  await fake?.close();
  rmSync(work, { recursive: true, force: true });
});

const MESSAGES = [{ role: 'user' as const, content: 'count' }];

test('failing first upstream (retried once) → fallback streams through: deltas arrive as the upstream sends them', async () => {
  const t0 = performance.now();
  const stream = await client.chat.completions.create({
    model: 'primary',
    messages: MESSAGES,
    stream: true,
    stream_options: { include_usage: true },
  });
  const arrivals: [string, number][] = [];
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const c of stream) {
    const d = c.choices[0]?.delta.content;
    if (d) arrivals.push([d, performance.now() - t0]);
    usage ??= c.usage;
  }
  assert.deepEqual(
    arrivals.map((a) => a[0]),
    WORDS,
  );
  // Passed through, not buffered: the first word came well before the last one.
  assert.ok(arrivals[2]![1] - arrivals[0]![1] >= GAP_MS, `arrivals ${JSON.stringify(arrivals)}`);
  assert.equal(calls.down, 2); // the original attempt + retries: 1
  assert.equal(usage?.completion_tokens, 3);
  assert.equal(usage?.prompt_tokens, 7);
  assert.equal(bodies.at(-1)?.model, 'm2');
  assert.equal(bodies.at(-1)?.stream, true);
});

test('a 503 is retried (Retry-After honoured); JSON replies are the joined stream', async () => {
  const r = await client.chat.completions.create({ model: 'flaky', messages: MESSAGES });
  assert.equal(r.choices[0]!.message.content, WORDS.join(''));
  assert.equal(calls.flaky, 2);
});

test('timeout_ms: a hanging upstream answers 502 upstream_error quickly, and the gateway stays up', async () => {
  const t0 = performance.now();
  await assert.rejects(
    client.chat.completions.create({ model: 'hang', messages: MESSAGES }),
    (e: InstanceType<typeof OpenAI.APIError>) =>
      e.status === 502 && e.code === 'upstream_error' && /timed out after 300 ms/.test(e.message),
  );
  // The upstream never answers; any bound well under the test timeout tells the 300 ms timeout from a hang.
  assert.ok(performance.now() - t0 < 10_000);
  const ok = await client.chat.completions.create({ model: 'backup', messages: MESSAGES });
  assert.equal(ok.choices[0]!.message.content, WORDS.join(''));
});

test('per-upstream concurrency 2: five parallel requests never put more than 2 on the upstream at once', async () => {
  maxInFlight = 0;
  const rs = await Promise.all(
    Array.from({ length: 5 }, () => client.chat.completions.create({ model: 'backup', messages: MESSAGES })),
  );
  for (const r of rs) assert.equal(r.choices[0]!.message.content, WORDS.join(''));
  assert.equal(maxInFlight, 2);
});

test('response_format goes to the upstream as sent; a client abort mid-stream closes the upstream stream', async () => {
  await client.chat.completions.create({
    model: 'backup',
    messages: MESSAGES,
    response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object' } } },
  });
  assert.deepEqual(bodies.at(-1)?.response_format, {
    type: 'json_schema',
    json_schema: { name: 'n', schema: { type: 'object' } },
  });
  const before = closedEarly;
  const ac = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'backup', messages: MESSAGES, stream: true },
    { signal: ac.signal },
  );
  try {
    for await (const c of stream) {
      if (c.choices[0]?.delta.content) {
        ac.abort();
        break;
      }
    }
  } catch {
    // the SDK may raise its abort error; either way the client is gone
  }
  for (let i = 0; i < 50 && closedEarly === before; i++) await sleep(20);
  assert.equal(closedEarly, before + 1);
});
