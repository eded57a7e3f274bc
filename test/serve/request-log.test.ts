// The serve request log: rows land in the registry with the prompt and reply PII-redacted before writing (the
// raw phone, e-mail and ID number appear in no stored column), retention deletes old rows, and the off switches
// (serve.yaml request_log.enabled=false, `--no-request-log` = requestLog: false) write nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { startServe } from '../../src/cli/serve.ts';
import { Registry } from '../../src/registry/db.ts';
import { RequestLog } from '../../src/registry/request-log.ts';
import { type OpenAIMock, startOpenAIMock } from '../../tools/mocks/openai-mock.ts';

// 11010519491231002X is the worked example of GB 11643-1999 (valid check digit); 13812345678 a mainland mobile.
const PHONE = '13812345678';
const EMAIL = 'wang.fang@example.com';
const ID = '11010519491231002X';
let work: string;
let mock: OpenAIMock;
let cfg: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'loom-reqlog-'));
  mock = await startOpenAIMock(() => ({ reply: `Noted: we will call ${PHONE} and mail ${EMAIL}.` }));
  cfg = join(work, 'serve.yaml');
  writeFileSync(cfg, `models:\n  - { name: shop, backend: upstream, base_url: "${mock.url}", model: m }\n`);
});
after(async () => {
  await mock?.close();
  rmSync(work, { recursive: true, force: true });
});

async function chatTwice(registry: string, extra: { requestLog?: boolean; overrides?: string[] } = {}) {
  const s = await startServe(cfg, { port: 0, logLevel: 'silent', registry, ...extra });
  try {
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const messages = [
      { role: 'system' as const, content: 'You are a shop assistant.' },
      { role: 'user' as const, content: `My phone is ${PHONE}, email ${EMAIL}, ID ${ID}. Where is my order?` },
    ];
    await c.chat.completions.create({ model: 'shop', messages });
    for await (const _ of await c.chat.completions.create({ model: 'shop', messages, stream: true })) {
      // drain
    }
  } finally {
    await s.close();
  }
}

function rows(registry: string): Record<string, unknown>[] {
  const db = new Database(registry, { readonly: true });
  try {
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'request_log'").get();
    return has ? (db.prepare('SELECT * FROM request_log ORDER BY id').all() as Record<string, unknown>[]) : [];
  } finally {
    db.close();
  }
}

test('stored rows hold redacted prompts and replies: no raw phone, e-mail or ID anywhere', async () => {
  const reg = join(work, 'on.db');
  await chatTwice(reg);
  const got = rows(reg);
  assert.equal(got.length, 2, 'one row per generation (JSON and SSE)');
  for (const r of got) {
    const all = JSON.stringify(r);
    for (const raw of [PHONE, EMAIL, ID, ID.toLowerCase()]) assert.ok(!all.includes(raw), `${raw} stored: ${all}`);
    assert.equal(r.model, 'shop');
    assert.equal(r.status, 200);
    const prompt = JSON.parse(String(r.prompt)) as { role: string; content: string }[];
    assert.equal(prompt[1]?.content, 'My phone is <PHONE>, email <EMAIL>, ID <ID>. Where is my order?');
    assert.equal(r.reply, 'Noted: we will call <PHONE> and mail <EMAIL>.');
    assert.ok(Number(r.latency_ms) > 0);
  }
});

test('off switches: request_log.enabled=false and requestLog: false write no rows', async () => {
  const a = join(work, 'off-yaml.db');
  await chatTwice(a, { overrides: ['request_log.enabled=false'] });
  assert.equal(rows(a).length, 0);
  const b = join(work, 'off-flag.db');
  await chatTwice(b, { requestLog: false });
  assert.equal(rows(b).length, 0);
});

test('retention: rows older than retention_days are deleted, newer ones kept', () => {
  let now = new Date('2026-01-01T00:00:00Z');
  const reg = new Registry(join(work, 'ret.db'));
  try {
    const log = new RequestLog(reg, { retentionDays: 7, maxChars: 50, now: () => now });
    const e = {
      requestId: 'r',
      model: 'm',
      route: 'chat' as const,
      status: 200,
      prompt: 'p',
      reply: 'x'.repeat(80),
      latencyMs: 1,
    };
    log.append(e);
    now = new Date('2026-01-05T00:00:00Z');
    log.append({ ...e, requestId: 'r2' });
    now = new Date('2026-01-09T00:00:00Z');
    assert.equal(log.prune(), 1, 'the 8-day-old row goes');
    const left = log.recent();
    assert.deepEqual(
      left.map((r) => r.request_id),
      ['r2'],
    );
    assert.equal(left[0]?.reply, `${'x'.repeat(50)}…`, 'max_chars cuts long text');
  } finally {
    reg.close();
  }
});
