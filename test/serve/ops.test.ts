// Operating `loom serve`: the CLI contract (one "listening on" line, SIGTERM drains then exits 0), backpressure,
// load shedding, upstream fallback against a fake upstream, real `promtool check metrics`, and a bounded fuzz.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startServe } from '../../src/cli/serve.ts';
import type { ChatModel, ChatResult } from '../../src/core/types.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { buildGateway } from '../../src/serve/app.ts';
import { ChatModelBackend } from '../../src/serve/backends.ts';
import { Limiter } from '../../src/serve/limiter.ts';
import { startOpenAIMock } from '../../tools/mocks/openai-mock.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let work: string;
let dir: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'loom-serve-ops-'));
  dir = join(work, 'tiny');
  // Keys live in the registry: a fresh one per run, so a developer's own keys never change these tests.
  process.env.LOOM_REGISTRY = join(work, 'registry.db');
  createModelFolder(dir, { preset: 'tiny', seed: 5, overrides: { initializer_range: 0.2 } });
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A ChatModel that answers after `ms`, so requests overlap deterministically. */
const slow = (ms: number): ChatModel => ({
  id: 'slow',
  chat: (): Promise<ChatResult> =>
    new Promise((r) =>
      setTimeout(() => r({ text: 'ok', usage: { promptTokens: 1, completionTokens: 1 }, finishReason: 'stop' }), ms),
    ),
});

test('CLI: prints exactly one "listening on" line; SIGTERM lets the open stream finish, then exits 0', async () => {
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'serve',
      dir,
      '--port',
      '0',
      '--log-level',
      'silent',
      'models.0.threads=1',
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  p.stderr.on('data', (d) => {
    stderr += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    p.stdout.on('data', (d) => {
      stdout += d;
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    p.on('exit', () => reject(new Error(`exited early: ${stderr}`)));
  });
  const exit = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 40,
    stream: true,
  });
  let chunks = 0;
  let finish: string | null | undefined;
  for await (const c of stream) {
    if (++chunks === 1) p.kill('SIGTERM');
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(finish === 'stop' || finish === 'length', `stream ran to its end after SIGTERM (finish ${finish})`);
  assert.equal(await exit, 0, stderr);
  assert.equal(stdout.split('\n').filter(Boolean).length, 1, stdout);
});

test('a full queue answers 429 with Retry-After; the memory watermark answers 503 with Retry-After', async () => {
  const gw = buildGateway({ models: [new ChatModelBackend('slow', slow(300), new Limiter(1, 1))] });
  const url = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  const post = () =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'x' }] }),
    });
  const rs = await Promise.all([post(), post(), post()]);
  assert.deepEqual(rs.map((r) => r.status).sort(), [200, 200, 429]);
  const busy = rs.find((r) => r.status === 429)!;
  assert.equal(busy.headers.get('retry-after'), '1');
  assert.equal(((await busy.json()) as { error: { type: string } }).error.type, 'rate_limit_error');
  await gw.drain();

  const low = buildGateway({ models: [new ChatModelBackend('slow', slow(1))], limits: { rss_watermark_mb: 1 } });
  const u2 = await low.app.listen({ host: '127.0.0.1', port: 0 });
  const r = await fetch(`${u2}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(r.status, 503);
  assert.ok(Number(r.headers.get('retry-after')) > 0);
  assert.equal((await fetch(`${u2}/health`)).status, 200);
  await low.drain();
});

test('upstream backend: a dead upstream falls back to the next in its chain (fake OpenAI upstream)', async () => {
  const mock = await startOpenAIMock(() => ({ reply: 'from the fallback' }));
  const cfg = join(work, 'serve.yaml');
  writeFileSync(
    cfg,
    [
      'models:',
      '  - { name: primary, backend: upstream, base_url: "http://127.0.0.1:9/v1", model: m, retries: 0, timeout_ms: 2000, fallback: [backup] }',
      `  - { name: backup, backend: upstream, base_url: "${mock.url}", model: real-model, concurrency: 2 }`,
    ].join('\n'),
  );
  const s = await startServe(cfg, { port: 0, logLevel: 'silent' });
  try {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'primary', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.choices[0]?.message.content, 'from the fallback');
    assert.equal(mock.requests.at(-1)?.body.model, 'real-model');
    let text = '';
    for await (const c of await client.chat.completions.create({
      model: 'backup',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    })) {
      text += c.choices[0]?.delta.content ?? '';
    }
    assert.equal(text, 'from the fallback');
  } finally {
    await s.close();
    await mock.close();
  }
});

test('serve.yaml: bad configs name the key; a missing gguf file is refused naming its path', async () => {
  const bad = join(work, 'bad.yaml');
  writeFileSync(bad, 'models:\n  - { name: "../x", backend: local, path: m }\n');
  await assert.rejects(startServe(bad, { port: 0 }), (e: Error & { field?: string }) => e.field === 'models.0.name');
  const g = join(work, 'g.yaml');
  writeFileSync(g, 'models:\n  - { name: g, backend: gguf, path: m.gguf }\n');
  await assert.rejects(
    startServe(g, { port: 0 }),
    (e: Error & { code?: string; field?: string }) => e.code === 'INPUT_NOT_FOUND' && /m\.gguf/.test(e.message),
  );
});

/** Ensures promtool is present (Debian `prometheus`); returns false when it cannot be installed here. */
function havePromtool(): boolean {
  if (spawnSync('promtool', ['--version']).status === 0) return true;
  const opts = { stdio: 'ignore' as const, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], opts);
  // A fresh machine has no package lists yet: update once, then try again.
  if (install().status !== 0) {
    spawnSync('apt-get', ['update'], opts);
    install();
  }
  return spawnSync('promtool', ['--version']).status === 0;
}

test('metrics pass real `promtool check metrics`; fuzzed requests never crash the server', async (t) => {
  const s = await startServe(dir, {
    port: 0,
    logLevel: 'silent',
    overrides: ['models.0.threads=1', 'limits.max_body_bytes=16384', 'limits.max_tokens=8'],
  });
  try {
    const junk = [
      '{',
      '[]',
      'null',
      '"x"',
      '{"model":5}',
      '{"model":"tiny","messages":"hi"}',
      '{"model":"tiny","messages":[{"role":"wizard","content":"x"}]}',
      '{"model":"tiny","messages":[{"role":"user","content":"x"}],"temperature":-1}',
      '{"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":0}',
      '{"model":"tiny","messages":[{"role":"user","content":"x"}],"stop":[1,2]}',
      '{"model":"tiny:..%2f..%2fetc","messages":[{"role":"user","content":"x"}]}',
      '{"model":"tiny","prompt":{"a":1}}',
      `{"model":"tiny","messages":[{"role":"user","content":"${'y'.repeat(20_000)}"}]}`,
      '\u0000\u00ff\ufffe',
    ];
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const N = 120;
    for (let i = 0; i < N; i++) {
      const kind = rnd();
      if (kind < 0.15) {
        // Disconnect mid-stream: open a stream, read a little, destroy the socket.
        await new Promise<void>((resolve) => {
          const rq = request(
            `${s.url}/v1/chat/completions`,
            { method: 'POST', headers: { 'content-type': 'application/json' } },
            (res) => {
              res.once('data', () => {
                rq.destroy();
                resolve();
              });
              res.on('end', resolve);
            },
          );
          rq.on('error', () => resolve());
          rq.end(JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'go' }], stream: true }));
        });
        continue;
      }
      const path = kind < 0.85 ? '/v1/chat/completions' : '/v1/completions';
      const body = junk[Math.floor(rnd() * junk.length)]!;
      const r = await fetch(`${s.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      assert.ok(r.status >= 400 && r.status < 600, `${body.slice(0, 60)} → ${r.status}`);
      const j = (await r.json()) as { error?: { message?: string } };
      assert.ok(j.error?.message, `${body.slice(0, 60)}: error JSON with a message`);
    }
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    const text = await (await fetch(`${s.url}/metrics`)).text();
    for (const name of [
      'loom_time_to_first_token_seconds',
      'loom_inter_token_latency_seconds',
      'loom_queue_depth',
      'loom_tokens_total',
      'loom_requests_total',
      'loom_process_resident_memory_bytes',
      'loom_nodejs_eventloop_lag_seconds',
    ]) {
      assert.ok(text.includes(`# TYPE ${name} `), name);
    }
    if (!havePromtool()) {
      t.skip(
        'promtool unavailable and `apt-get install prometheus` failed here: metrics format not checked by promtool',
      );
      return;
    }
    const pt = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(pt.status, 0, `${pt.stdout}${pt.stderr}`);
  } finally {
    await s.close();
  }
});
