import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { OpenAICompatibleModel, parseRetryAfter } from '../../src/providers/openai-compatible.ts';
import { costOf, defaultPrices } from '../../src/providers/presets.ts';
import { startOpenAIMock, unreachableUrl } from '../../tools/mocks/openai-mock.ts';

const mocks: { close(): Promise<void> }[] = [];
after(async () => {
  for (const m of mocks) await m.close();
});

test('sends the conversation and settings, returns text and usage', async () => {
  const mock = await startOpenAIMock(() => ({ reply: '您好，请提供订单号。' }));
  mocks.push(mock);
  const m = new OpenAICompatibleModel({ baseURL: mock.url, model: 'faq', apiKey: 'sk-test' });
  const r = await m.chat([{ role: 'user', content: '我的订单到哪了' }], { maxNewTokens: 32, temperature: 0, seed: 3 });
  assert.equal(r.text, '您好，请提供订单号。');
  assert.equal(r.usage.completionTokens, '您好，请提供订单号。'.length);
  assert.equal(mock.requests[0]!.body.max_tokens, 32);
  assert.equal(mock.requests[0]!.body.seed, 3);
  assert.equal(mock.requests[0]!.headers.authorization, 'Bearer sk-test');
});

test('retries 429 and 5xx with backoff, then succeeds', async () => {
  const mock = await startOpenAIMock((_r, i) =>
    i === 0 ? { status: 429, retryAfter: 0 } : i === 1 ? { status: 503 } : { reply: 'ok' },
  );
  mocks.push(mock);
  const m = new OpenAICompatibleModel({ baseURL: mock.url, model: 'x', backoffMs: 5 });
  const r = await m.chat([{ role: 'user', content: 'hi' }]);
  assert.equal(r.text, 'ok');
  assert.equal(mock.requests.length, 3);
});

test('gives up after max retries with a NETWORK error naming the endpoint', async () => {
  const mock = await startOpenAIMock(() => ({ status: 500 }));
  mocks.push(mock);
  const m = new OpenAICompatibleModel({ baseURL: mock.url, model: 'x', backoffMs: 1, maxRetries: 2 });
  await assert.rejects(
    m.chat([{ role: 'user', content: 'hi' }]),
    (e: unknown) => e instanceof LoomError && e.code === 'NETWORK' && e.message.includes(mock.url),
  );
  assert.equal(mock.requests.length, 3);
});

test('a 400 is not retried and reports the status', async () => {
  const mock = await startOpenAIMock(() => ({ status: 400, body: '{"error":{"message":"bad model"}}' }));
  mocks.push(mock);
  const m = new OpenAICompatibleModel({ baseURL: mock.url, model: 'x', backoffMs: 1 });
  await assert.rejects(
    m.chat([{ role: 'user', content: 'hi' }]),
    (e: unknown) => e instanceof LoomError && e.code === 'PROVIDER' && /HTTP 400/.test(e.message),
  );
  assert.equal(mock.requests.length, 1);
});

test('timeouts are retried and reported', async () => {
  const mock = await startOpenAIMock(() => ({ stallMs: 300 }));
  mocks.push(mock);
  const m = new OpenAICompatibleModel({ baseURL: mock.url, model: 'x', timeoutMs: 50, backoffMs: 1, maxRetries: 1 });
  await assert.rejects(
    m.chat([{ role: 'user', content: 'hi' }]),
    (e: unknown) => e instanceof LoomError && e.code === 'NETWORK' && /timed out/.test(e.message),
  );
});

test('unreachable endpoint is a clear NETWORK error naming the URL and the cause', async () => {
  const url = await unreachableUrl();
  const m = new OpenAICompatibleModel({ baseURL: url, model: 'x', backoffMs: 1, maxRetries: 1 });
  await assert.rejects(
    m.chat([{ role: 'user', content: 'hi' }]),
    (e: unknown) =>
      e instanceof LoomError &&
      e.code === 'NETWORK' &&
      e.message.includes(`${url}/chat/completions`) &&
      /ECONNREFUSED/.test(e.message) &&
      /after 2 attempts/.test(e.message),
  );
});

test('concurrency limit caps requests in flight', async () => {
  const mock = await startOpenAIMock(async () => {
    await new Promise((r) => setTimeout(r, 30));
    return { reply: 'x' };
  });
  mocks.push(mock);
  const m = new OpenAICompatibleModel({ baseURL: mock.url, model: 'x', concurrency: 2 });
  await Promise.all(Array.from({ length: 6 }, () => m.chat([{ role: 'user', content: 'hi' }])));
  assert.equal(mock.maxInFlight, 2);
});

test('hosted preset without its key env fails on first use, naming the variable', async () => {
  delete process.env.DEEPSEEK_API_KEY;
  const m = new OpenAICompatibleModel({ provider: 'deepseek', model: 'deepseek-chat' });
  await assert.rejects(
    m.chat([{ role: 'user', content: 'hi' }]),
    (e: unknown) => e instanceof LoomError && e.message.includes('DEEPSEEK_API_KEY'),
  );
});

test('unknown preset is refused', () => {
  assert.throws(() => new OpenAICompatibleModel({ provider: 'nope', model: 'x' }), LoomError);
});

test('cost from the price table: USD per million tokens', () => {
  assert.equal(costOf('openai:gpt-4o-mini', 1_000_000, 1_000_000, defaultPrices), 0.75);
  assert.equal(costOf('unknown:x', 10, 10, defaultPrices), undefined);
});

test('Retry-After from a 429 is waited out before the retry (not the much shorter backoff)', async () => {
  const mock = await startOpenAIMock((_r, i) => (i === 0 ? { status: 429, retryAfter: 1 } : { reply: 'ok' }));
  mocks.push(mock);
  const m = new OpenAICompatibleModel({ baseURL: mock.url, model: 'x', backoffMs: 1 });
  const t0 = Date.now();
  assert.equal((await m.chat([{ role: 'user', content: 'hi' }])).text, 'ok');
  const waited = Date.now() - t0;
  assert.equal(mock.requests.length, 2);
  assert.ok(waited >= 950, `waited ${waited} ms for Retry-After: 1`);
});

test('Retry-After parses seconds and HTTP dates, capped at a minute', () => {
  const now = Date.parse('Sat, 28 Nov 2026 12:00:00 GMT');
  assert.equal(parseRetryAfter('2', now), 2000);
  assert.equal(parseRetryAfter('Sat, 28 Nov 2026 12:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Sat, 28 Nov 2026 11:59:00 GMT', now), 0);
  assert.equal(parseRetryAfter('3600', now), 60_000);
  assert.equal(parseRetryAfter(null, now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
});
