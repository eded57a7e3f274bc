// `loom keys` and key checks in `loom serve`: plaintext shown once and never stored, scope, rpm, budget, revoke.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startServe } from '../../src/cli/serve.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { Registry } from '../../src/registry/db.ts';
import { ApiKeys } from '../../src/registry/keys.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let work: string;
let dir: string;
let reg: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'loom-keys-'));
  dir = join(work, 'tiny');
  reg = join(work, 'registry.db');
  createModelFolder(dir, { preset: 'tiny', seed: 4 });
});
after(() => rmSync(work, { recursive: true, force: true }));

const loom = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'keys', '--registry', reg, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });

test('loom keys create/list/revoke: key printed once, only its hash at rest', () => {
  const c = loom(['create', '--name', 'bot', '--models', 'tiny', '--rpm', '5']);
  assert.equal(c.status, 0, c.stderr);
  const key = c.stdout.trim();
  assert.match(key, /^loom-sk-[A-Za-z0-9_-]{32}$/);
  const l = loom(['list', '--json']);
  const rows = JSON.parse(l.stdout) as { id: string; name: string; models: string[]; rpm: number }[];
  assert.equal(rows.length, 1);
  assert.deepEqual([rows[0]!.name, rows[0]!.models, rows[0]!.rpm], ['bot', ['tiny'], 5]);
  assert.ok(!l.stdout.includes(key));
  for (const f of [reg, `${reg}-wal`]) {
    try {
      assert.ok(!readFileSync(f).includes(key), `${f} holds the plaintext key`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  assert.equal(loom(['revoke', rows[0]!.id]).status, 0);
  assert.notEqual(loom(['revoke', rows[0]!.id]).status, 0, 'revoking twice is an error');
});

test('loom serve with keys: 401 without (also /v1/models, filtered by scope), 403 outside scope, 429 over rpm and budget, 401 once revoked', async () => {
  const r = new Registry(reg);
  const keys = new ApiKeys(r);
  const ok = keys.create({ name: 'ok', models: ['tiny'], rpm: 3 });
  const other = keys.create({ name: 'other', models: ['elsewhere'] });
  const small = keys.create({ name: 'small', tokenBudget: 1 });
  const s = await startServe(dir, { port: 0, logLevel: 'silent', registry: reg, overrides: ['models.0.threads=1'] });
  const ask = (key: string) =>
    new OpenAI({ baseURL: `${s.url}/v1`, apiKey: key, maxRetries: 0 }).chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
  const status = async (p: Promise<unknown>) => {
    try {
      await p;
      return 200;
    } catch (e) {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      return e.status;
    }
  };
  const list = (key?: string) =>
    fetch(`${s.url}/v1/models`, { headers: key ? { authorization: `Bearer ${key}` } : {} }).then(async (r) => ({
      status: r.status,
      ids: r.ok ? ((await r.json()) as { data: { id: string }[] }).data.map((m) => m.id) : [],
    }));
  try {
    assert.deepEqual(await list(), { status: 401, ids: [] }, '/v1/models needs a key once keys exist');
    assert.deepEqual(await list(ok.key), { status: 200, ids: ['tiny'] });
    assert.deepEqual(await list(other.key), { status: 200, ids: [] }, 'a key scoped elsewhere sees none');
    const sdkList = await new OpenAI({ baseURL: `${s.url}/v1`, apiKey: small.key, maxRetries: 0 }).models.list();
    assert.deepEqual(
      sdkList.data.map((m) => m.id),
      ['tiny'],
      'an unscoped key sees every model',
    );
    assert.equal(await status(ask('loom-sk-wrong')), 401);
    assert.equal(await status(ask(other.key)), 403);
    assert.equal(await status(ask(ok.key)), 200);
    assert.equal(await status(ask(ok.key)), 200);
    assert.equal(await status(ask(ok.key)), 200);
    assert.equal(await status(ask(ok.key)), 429);
    assert.equal(await status(ask(small.key)), 200);
    assert.equal(await status(ask(small.key)), 429, 'budget of 1 token is spent by the first reply');
    assert.ok((keys.get(ok.record.id)?.tokensUsed ?? 0) > 0);
    keys.revoke(small.record.id);
    assert.equal(await status(ask(small.key)), 401);
  } finally {
    await s.close();
    r.close();
  }
});
