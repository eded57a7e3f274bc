import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { loadPromptRef } from '../../src/config/prompt.ts';
import { loadServeConfig } from '../../src/config/serve.ts';
import { isLoomError } from '../../src/core/errors.ts';
import type { Message } from '../../src/core/types.ts';
import { runSuite } from '../../src/eval/suite/runner.ts';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { initProject } from '../../src/pipeline/init.ts';
import { runPipeline } from '../../src/pipeline/run.ts';
import { PRICE_TABLE, priceLabel, priceProvenance } from '../../src/providers/presets.ts';
import { buildGateway } from '../../src/serve/app.ts';
import { openBackend } from '../../src/serve/backends.ts';
import { Limiter } from '../../src/serve/limiter.ts';
import { listenGateway } from '../../src/serve/openai-server.ts';
import { type OpenAIMock, startOpenAIMock } from '../../tools/mocks/openai-mock.ts';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'loom-prompt-only-'));
  mkdirSync(join(dir, 'prompts'));
  // A prompt file with its history: v1 plain, v2 with a system text, two few-shot turns and a user template.
  writeFileSync(
    join(dir, 'prompts', 'faq.yaml'),
    stringify({
      id: 'faq',
      versions: [
        { version: 1, system: 'Answer briefly.' },
        {
          version: 2,
          system: 'You answer shop FAQs.',
          few_shot: [
            { user: 'Do you ship abroad?', assistant: 'Yes, to most countries.' },
            { user: 'Can I pay by card?', assistant: 'Yes, Visa and UnionPay.' },
          ],
          user: 'Question: {{ input }}',
        },
      ],
    }),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** What v2 must turn a client's chat into (written out by hand from the file above). */
const V2_MESSAGES = (question: string): Message[] => [
  { role: 'system', content: 'You answer shop FAQs.' },
  { role: 'user', content: 'Do you ship abroad?' },
  { role: 'assistant', content: 'Yes, to most countries.' },
  { role: 'user', content: 'Can I pay by card?' },
  { role: 'assistant', content: 'Yes, Visa and UnionPay.' },
  { role: 'user', content: `Question: ${question}` },
];

test('prompt files: @version picks a version (2 = v2), no @ takes the last; bad files and versions name the fix', () => {
  assert.equal(loadPromptRef('prompts/faq.yaml', dir).spec.version, 2);
  assert.equal(loadPromptRef('prompts/faq.yaml@v1', dir).spec.system, 'Answer briefly.');
  assert.deepEqual(loadPromptRef('prompts/faq.yaml@2', dir).spec.few_shot.length, 2);
  assert.throws(
    () => loadPromptRef('prompts/faq.yaml@3', dir),
    (e) => isLoomError(e) && /has no version 3 \(it has 1, 2\)/.test(e.message) && /faq\.yaml@2/.test(e.hint ?? ''),
  );
  writeFileSync(join(dir, 'prompts', 'noversion.yaml'), stringify({ id: 'x', system: 's' }));
  assert.throws(
    () => loadPromptRef('prompts/noversion.yaml', dir),
    (e) => isLoomError(e) && /version/.test(e.message) && /noversion\.yaml/.test(`${e.message} ${e.file ?? ''}`),
  );
  writeFileSync(join(dir, 'prompts', 'typo.yaml'), stringify({ id: 'x', version: 1, few_shots: [] }));
  assert.throws(
    () => loadPromptRef('prompts/typo.yaml', dir),
    (e) => isLoomError(e) && /few_shots/.test(e.message),
  );
  assert.throws(
    () => loadPromptRef('faq.txt', dir),
    (e) => isLoomError(e) && /prompts\/<name>\.yaml/.test(e.hint ?? ''),
  );
  // serve.yaml takes the same reference and refuses a malformed one with the field path
  writeFileSync(
    join(dir, 'serve-bad.yaml'),
    stringify({
      models: [{ name: 'm', backend: 'upstream', base_url: 'http://127.0.0.1:1/v1', model: 'x', prompt: 'faq' }],
    }),
  );
  assert.throws(
    () => loadServeConfig(join(dir, 'serve-bad.yaml')),
    (e) => isLoomError(e) && /prompt/.test(e.message),
  );
});

/** An OpenAI-compatible upstream that streams one word (serve's upstream backend always streams) and records bodies. */
async function sseUpstream(): Promise<{ url: string; bodies: { messages: Message[] }[]; close: () => Promise<void> }> {
  const bodies: { messages: Message[] }[] = [];
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const c of req) raw += c;
    bodies.push(JSON.parse(raw));
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'Sure.' }, finish_reason: null }] })}\n\n`,
    );
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/v1`, bodies, close: () => new Promise((r) => server.close(() => r())) };
}

test('loom serve: an upstream model with prompt: prompts/faq.yaml@2 sends system + few-shot + templated user', async () => {
  const up = await sseUpstream();
  writeFileSync(
    join(dir, 'serve.yaml'),
    stringify({
      models: [{ name: 'faq', backend: 'upstream', base_url: up.url, model: 'hosted-m', prompt: 'prompts/faq.yaml@2' }],
    }),
  );
  const l = loadServeConfig(join(dir, 'serve.yaml'));
  const gw = buildGateway({
    models: [await openBackend(l.config.models[0]!, l.baseDir, new Limiter(1, 4))],
    logLevel: 'silent',
  });
  const url = await listenGateway(gw, '127.0.0.1', 0);
  try {
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'faq',
        messages: [
          { role: 'system', content: 'client system, replaced by the prompt' },
          { role: 'user', content: 'Where is my parcel?' },
        ],
      }),
    });
    assert.equal(r.status, 200);
    const j = (await r.json()) as { choices: { message: { content: string } }[] };
    assert.equal(j.choices[0]!.message.content, 'Sure.');
    assert.deepEqual(
      up.bodies[0]!.messages.map((m) => ({ role: m.role, content: m.content })),
      V2_MESSAGES('Where is my parcel?'),
    );
  } finally {
    await gw.app.close();
    await up.close();
  }
});

test('loom serve: a local model with a prompt answers exactly as the model given the rendered messages', async () => {
  createModelFolder(join(dir, 'model'), { preset: 'tiny', seed: 3 });
  const cfg = {
    name: 'loc',
    backend: 'local' as const,
    path: 'model',
    adapters: {},
    concurrency: 1,
    prompt: 'prompts/faq.yaml@2',
  };
  const served = await openBackend(cfg, dir, new Limiter(1, 4));
  const plain = await LocalChatModel.fromFolder(join(dir, 'model'));
  try {
    const settings = { maxNewTokens: 6, temperature: 0 };
    const got = await served.generate({
      messages: [{ role: 'user', content: 'Hello?' }],
      settings,
      signal: new AbortController().signal,
    });
    const want = await plain.chat(V2_MESSAGES('Hello?'), settings);
    assert.equal(got.text, want.text);
    assert.equal(got.usage.promptTokens, want.usage.promptTokens, 'the few-shot turns reached the model');
  } finally {
    await served.close();
    await plain.close();
  }
});

let mock: OpenAIMock;
test('loom eval: prompt-only hosted vs a local model in one report, cost per 1,000 requests beside latency', async (t) => {
  mock = await startOpenAIMock(() => ({ reply: 'Yes.' }));
  t.after(() => mock.close());
  writeFileSync(
    join(dir, 'qa.jsonl'),
    ['Do you open on Sunday?', 'Is there a warranty?', 'Can I return shoes?']
      .map((q) =>
        JSON.stringify({
          messages: [
            { role: 'user', content: q },
            { role: 'assistant', content: 'Yes.' },
          ],
        }),
      )
      .join('\n'),
  );
  writeFileSync(
    join(dir, 'eval.yaml'),
    stringify({
      name: 'po',
      models: [
        { id: 'tuned', kind: 'local', path: 'model' },
        { id: 'hosted', kind: 'endpoint', base_url: mock.url, model: 'hosted-m' },
      ],
      prompts: ['prompts/faq.yaml@2'],
      generation: { max_new_tokens: 3, temperature: 0, seed: 0 },
      tasks: [{ id: 'qa', kind: 'generation', dataset: 'qa.jsonl', metrics: ['em'] }],
      prices: { 'endpoint:hosted-m': { input: 2, output: 8 } },
      out_dir: 'evals',
      cache: 'cache.sqlite',
      bootstrap: { samples: 10, seed: 1 },
    }),
  );
  const { result, dir: out } = await runSuite(join(dir, 'eval.yaml'), { parallel: 1 });
  assert.deepEqual(
    result.tasks.map((x) => `${x.model}/${x.prompt}`),
    ['tuned/faq@2', 'hosted/faq@2'],
  );
  // the hosted model got the few-shot prompt
  assert.deepEqual(mock.requests[0]!.body.messages.slice(0, 5), V2_MESSAGES('').slice(0, 5));
  // Independent cost: the mock bills prompt tokens = characters of the contents joined by spaces, completion = reply.
  const p = mock.requests.reduce((s, r) => s + r.body.messages.map((m) => m.content).join(' ').length, 0);
  const c = mock.requests.length * 'Yes.'.length;
  const hosted = result.usage.hosted!;
  assert.equal(hosted.requests, 3);
  assert.ok(Math.abs(hosted.costPer1kRequestsUsd! - ((p * 2 + c * 8) / 1e6 / 3) * 1000) < 1e-12);
  const tuned = result.usage.tuned!;
  assert.equal(tuned.requests, 3);
  assert.equal(tuned.costPer1kRequestsUsd, undefined, 'a local model has no price');
  assert.ok(tuned.meanLatencyMs! > 0 && hosted.meanLatencyMs! > 0);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /cost \/ 1,000 requests/);
  assert.match(html, new RegExp(hosted.costPer1kRequestsUsd!.toFixed(4)));
  // the suite priced the hosted model itself: the cost says so rather than passing for a verified list price
  assert.deepEqual(hosted.price, { origin: 'suite', verified: false });
  assert.match(html, /suite price \/ 套件自定价格/);
});

test('the price table: every entry names its sources, the date they state, and whether it was verified', () => {
  const keys = ['asOf', 'input', 'note', 'output', 'sources', 'verified'];
  for (const [k, v] of Object.entries(PRICE_TABLE)) {
    assert.match(k, /^[\w-]+:[\w.-]+$/, `${k}: keyed provider:model`);
    for (const f of Object.keys(v)) assert.ok(keys.includes(f), `${k}: unknown field ${f}`);
    assert.ok(Array.isArray(v.sources) && v.sources.length > 0, `${k}: at least one source`);
    for (const src of v.sources)
      assert.match(src, /^(https:\/\/\S+|github:[\w.-]+\/[\w.-]+@[0-9a-f]{40}:\S+)$/, `${k}: source ${src}`);
    assert.match(v.asOf, /^\d{4}-\d{2}-\d{2}$/, `${k}: asOf`);
    assert.ok(!Number.isNaN(Date.parse(v.asOf)), `${k}: asOf is a real date`);
    assert.equal(typeof v.verified, 'boolean', `${k}: verified`);
    // an estimate must say why it is one
    if (!v.verified) assert.ok((v.note ?? '').length > 20, `${k}: an unverified price explains itself`);
    assert.ok(v.input > 0 && v.output > 0, k);
  }
});

test('a cost says which price it rests on: verified table price, unverified table price, or the suite’s own', () => {
  const verified = Object.entries(PRICE_TABLE).find(([, v]) => v.verified)!;
  const unverified = Object.entries(PRICE_TABLE).find(([, v]) => !v.verified)!;
  assert.deepEqual(priceProvenance(verified[0], {}), { origin: 'table', verified: true, asOf: verified[1].asOf });
  assert.equal(priceProvenance(unverified[0], {})!.verified, false);
  assert.deepEqual(priceProvenance(verified[0], { [verified[0]]: { input: 1, output: 1 } }), {
    origin: 'suite',
    verified: false,
  });
  assert.equal(priceProvenance('local:model', {}), undefined);
  assert.match(
    priceLabel(priceProvenance(verified[0], {}))!.en,
    new RegExp(`verified price, as of ${verified[1].asOf}`),
  );
  assert.match(priceLabel(priceProvenance(unverified[0], {}))!.zh, /价格未核实/);
});

test('loom init --template faq-qa --no-train, then loom run: data ran, serve names the prompt version; edits rerun', async () => {
  const proj = join(dir, 'faq');
  initProject(proj, 'faq-qa', { noTrain: true });
  const registry = join(dir, 'faq-registry.db');
  const log = () => {};
  const first = await runPipeline(join(proj, 'pipeline.yaml'), { registry, log });
  assert.deepEqual(
    first.stages.map((s) => `${s.stage}:${s.status}`),
    ['data:ran', 'serve:ran'],
  );
  assert.match(first.stages[1]!.summary, /model: prompt faq-qa@1 \(\d+ few-shot\)/);
  const ep = JSON.parse(readFileSync(join(proj, 'out/serve/endpoint.json'), 'utf8')) as {
    models: { prompt?: string }[];
  };
  assert.equal(ep.models[0]!.prompt, 'prompts/default.yaml@1');
  const again = await runPipeline(join(proj, 'pipeline.yaml'), { registry, log });
  assert.deepEqual(
    again.stages.map((s) => s.status),
    ['skipped', 'skipped'],
  );
  // a prompt edit is an input change of the serve stage
  const f = join(proj, 'prompts/default.yaml');
  writeFileSync(f, readFileSync(f, 'utf8').replace('version: 1', 'version: 2'));
  await assert.rejects(
    runPipeline(join(proj, 'pipeline.yaml'), { registry, log }),
    (e) => isLoomError(e) && /has no version 1/.test(e.message),
    'serve.yaml still pins @1: the stale reference is caught before serving',
  );
  writeFileSync(join(proj, 'serve.yaml'), readFileSync(join(proj, 'serve.yaml'), 'utf8').replace('@1', '@2'));
  const third = await runPipeline(join(proj, 'pipeline.yaml'), { registry, log });
  assert.deepEqual(
    third.stages.map((s) => `${s.stage}:${s.status}`),
    ['data:skipped', 'serve:ran'],
  );
  assert.ok(existsSync(join(proj, 'eval.yaml')));
});
