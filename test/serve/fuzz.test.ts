// Bounded fuzz of `loom serve` (tools/fuzz/serve-fuzz.ts): 400 seeded requests, four at a time — malformed JSON,
// wrong types, invalid params, huge bodies, path traversal in model/adapter names and URLs, wrong content types,
// disconnects mid-stream and mid-upload, plus valid requests that must still succeed. Zero invariant violations,
// no internal_error 500s, the model's real adapter still served, /health answers afterwards. The 10,000-request run
// is bench/serve/fuzz.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningServer, startServe } from '../../src/cli/serve.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { runServeFuzz } from '../../tools/fuzz/serve-fuzz.ts';

let work: string;
let server: RunningServer;
const MAX_BODY = 16384;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'loom-serve-fuzz-'));
  createModelFolder(join(work, 'tiny'), { preset: 'tiny', seed: 5, overrides: { initializer_range: 0.2 } });
  createModelFolder(join(work, 'other'), { preset: 'tiny', seed: 6, overrides: { initializer_range: 0.2 } });
  const cfg = join(work, 'serve.yaml');
  writeFileSync(
    cfg,
    [
      'limits: { max_body_bytes: 16384, max_tokens: 16, queue: 64 }',
      'models:',
      '  - { name: tiny, backend: local, path: tiny, threads: 1, adapters: { lora: other } }',
    ].join('\n'),
  );
  server = await startServe(cfg, {
    registry: join(work, 'registry.db'),
    port: 0,
    logLevel: 'silent',
    requestLog: false,
  });
});

after(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

test('400 fuzzed requests: every error in the OpenAI envelope, valid ones answered, no crash, /health after', async () => {
  const rep = await runServeFuzz({
    url: server.url,
    model: 'tiny',
    count: 400,
    seed: 12,
    parallel: 4,
    maxBodyBytes: MAX_BODY,
  });
  console.log(
    `# fuzz: ${rep.requests} requests in ${rep.seconds.toFixed(1)} s; kinds ${JSON.stringify(rep.byKind)}; statuses ${JSON.stringify(rep.byStatus)}`,
  );
  assert.deepEqual(rep.violations, []);
  assert.equal(rep.internalErrors, 0);
  assert.equal(rep.requests, 400);
  // Every kind was exercised, and the error classes the fuzzer aims at were really answered.
  for (const k of [
    'malformed_json',
    'wrong_type',
    'invalid_param',
    'traversal_model',
    'huge_body',
    'disconnect_stream',
    'valid',
  ])
    assert.ok((rep.byKind[k] ?? 0) > 0, k);
  for (const s of ['200', '400', '404', '413']) assert.ok((rep.byStatus[s] ?? 0) > 0, `no ${s} answers`);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  // The real adapter still answers; traversal names never reached the filesystem (they were 404s above).
  const r = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny:lora', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
  });
  assert.equal(r.status, 200);
});
