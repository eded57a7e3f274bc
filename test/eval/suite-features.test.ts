import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import type { ModelSpec } from '../../src/config/eval.ts';
import { LoomError } from '../../src/core/errors.ts';
import { recordEvalRun } from '../../src/eval/records.ts';
import { compareRuns } from '../../src/eval/report/compare.ts';
import { modelFingerprint } from '../../src/eval/suite/models.ts';
import type { RunResult, TaskRunResult } from '../../src/eval/suite/results.ts';
import { runSuite } from '../../src/eval/suite/runner.ts';
import { Registry } from '../../src/registry/db.ts';
import { type MockAction, type MockRequest, type OpenAIMock, startOpenAIMock } from '../../tools/mocks/openai-mock.ts';

const QA: [string, string][] = [
  ['How do I return an item?', 'Open the order page and choose return within seven days.'],
  ['Where is my parcel?', 'Send us the order number and we will check the tracking.'],
  ['Can I pay by card?', 'Yes, we accept Visa, Mastercard and UnionPay cards.'],
  ['Do you ship abroad?', 'We ship to most countries; delivery takes five to ten days.'],
];
/** Task two asks other questions (identical messages would be cache hits across tasks). */
const QA2: [string, string][] = QA.map(([q, a]) => [`Second round: ${q}`, a]);
const answers = new Map([...QA, ...QA2]);
const lastUser = (r: MockRequest) => r.body.messages.filter((m) => m.role === 'user').at(-1)!.content;

let dir: string;
let mock: OpenAIMock;
/** What the shared mock does; tests swap it (the cache keys an endpoint by its URL, so the URL must stay). */
let behaviour: (r: MockRequest, i: number) => MockAction | Promise<MockAction>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'loom-suite-features-'));
  const rows = (qa: [string, string][], prefix: string) =>
    qa
      .map(([q, a], i) =>
        JSON.stringify({
          id: `${prefix}${i}`,
          messages: [
            { role: 'user', content: q },
            { role: 'assistant', content: a },
          ],
        }),
      )
      .join('\n');
  writeFileSync(join(dir, 'gen.jsonl'), rows(QA, 'q'));
  writeFileSync(join(dir, 'gen2.jsonl'), rows(QA2, 'r'));
  mock = await startOpenAIMock((r, i) => behaviour(r, i));
});

after(async () => {
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeSuite(name: string, body: object): string {
  const p = join(dir, `${name}.yaml`);
  writeFileSync(p, stringify({ name, out_dir: 'out', bootstrap: { samples: 100, seed: 1 }, ...body }));
  return p;
}

test('prompt versions with system text and few-shot turns are run and compared side by side', async () => {
  // The endpoint only answers correctly when it was given the v2 system prompt and its few-shot example.
  behaviour = (r) => {
    const sys = r.body.messages[0]?.role === 'system' ? r.body.messages[0].content : '';
    const shots = r.body.messages.filter((m) => m.content === 'Hi');
    return { reply: sys === 'You are the shop assistant.' && shots.length === 1 ? answers.get(lastUser(r))! : 'no' };
  };
  const suite = writeSuite('prompts', {
    cache: 'prompts.sqlite',
    models: [{ id: 'ep', kind: 'endpoint', base_url: mock.url, model: 'm' }],
    prompts: [
      { id: 'support', version: 1 },
      {
        id: 'support',
        version: 2,
        system: 'You are the shop assistant.',
        few_shot: [{ user: 'Hi', assistant: 'Hello! How can I help?' }],
      },
    ],
    tasks: [{ id: 'faq', kind: 'generation', dataset: 'gen.jsonl', metrics: ['em'] }],
  });
  const start = mock.requests.length;
  const { result } = await runSuite(suite);
  const v2req = mock.requests.slice(start).find((r) => r.body.messages[0]?.role === 'system')!;
  assert.deepEqual(
    v2req.body.messages.map((m) => m.role),
    ['system', 'user', 'assistant', 'user'],
    'system, the few-shot pair, then the item',
  );
  const get = (p: string) => result.tasks.find((t) => t.prompt === p)!;
  assert.equal(get('support@1').summary.em!.score, 0);
  assert.equal(get('support@2').summary.em!.score, 1);
  const rows = compareRuns(result, undefined, { baseline: 'ep/support@1' });
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.system, 'ep/support@2');
  assert.equal(rows[0]!.delta, 1);
  // exact match on 4 items, every one flipped: the paired bootstrap resample difference is always 1 → p = 1/1001
  assert.ok(rows[0]!.pValue! < 0.05);
});

test('json_schema, regex and max_length assertions in a scenario, through a suite', async () => {
  behaviour = (r) =>
    lastUser(r).startsWith('Give me')
      ? { reply: 'Here it is:\n```json\n{"order_id": "A123", "status": "shipped"}\n```' }
      : { reply: '{"order_id": 42}' };
  writeFileSync(
    join(dir, 'json-scen.yaml'),
    stringify([
      {
        id: 'order-json',
        user: { mode: 'scripted', turns: ['Give me the order as JSON', 'Again please'] },
        per_turn: [
          {
            type: 'json_schema',
            value: {
              type: 'object',
              required: ['order_id', 'status'],
              properties: { order_id: { type: 'string' }, status: { type: 'string' } },
            },
          },
          { type: 'regex', value: '"order_id":\\s*"[A-Z]\\d+"' },
          { type: 'max_length', value: 80 },
        ],
      },
    ]),
  );
  const suite = writeSuite('json', {
    cache: 'json.sqlite',
    models: [{ id: 'ep', kind: 'endpoint', base_url: mock.url, model: 'm' }],
    tasks: [{ id: 'talk', kind: 'conversation', scenarios: ['json-scen.yaml'] }],
  });
  const { result } = await runSuite(suite);
  const c = result.tasks[0]!.conversations![0]!;
  const passes = c.turns.map((t) => t.checks.map((k) => `${k.type}:${k.pass}`));
  // turn 1: fenced JSON with both string fields, 71 characters; turn 2: order_id is a number and status is missing
  assert.deepEqual(passes, [
    ['json_schema:true', 'regex:true', 'max_length:true'],
    ['json_schema:false', 'regex:false', 'max_length:true'],
  ]);
  assert.equal(c.passed, false);
  assert.equal(result.tasks[0]!.summary.pass_rate!.score, 0);
});

test('tokens and cost: counted per model, priced from a prices_file with suite prices winning, cache costs nothing', async () => {
  behaviour = (r) => ({ reply: answers.get(lastUser(r)) ?? 'ok' });
  writeFileSync(
    join(dir, 'prices.yaml'),
    stringify({ 'endpoint:a': { input: 2, output: 10 }, 'endpoint:b': { input: 1, output: 1 } }),
  );
  const suite = writeSuite('cost', {
    cache: 'cost.sqlite',
    models: [
      { id: 'a', kind: 'endpoint', base_url: mock.url, model: 'a' },
      { id: 'b', kind: 'endpoint', base_url: mock.url, model: 'b' },
    ],
    prices_file: 'prices.yaml',
    prices: { 'endpoint:b': { input: 3, output: 5 } },
    tasks: [{ id: 'faq', kind: 'generation', dataset: 'gen.jsonl', metrics: ['em'] }],
  });
  const start = mock.requests.length;
  const { result } = await runSuite(suite);
  // The mock reports prompt tokens = characters of all message contents joined by spaces, completion = reply chars.
  const sent = mock.requests.slice(start);
  const tokens = (model: string) => {
    const mine = sent.filter((r) => r.body.model === model);
    assert.equal(mine.length, QA.length);
    return {
      p: mine.reduce((s, r) => s + r.body.messages.map((m) => m.content).join(' ').length, 0),
      c: mine.reduce((s, r) => s + answers.get(lastUser(r))!.length, 0),
    };
  };
  const ta = tokens('a');
  const tb = tokens('b');
  const ua = result.usage.a!;
  const ub = result.usage.b!;
  assert.deepEqual([ua.promptTokens, ua.completionTokens], [ta.p, ta.c]);
  assert.deepEqual([ub.promptTokens, ub.completionTokens], [tb.p, tb.c]);
  assert.ok(Math.abs(ua.costUsd! - (ta.p * 2 + ta.c * 10) / 1e6) < 1e-15, 'a priced from the file');
  assert.ok(Math.abs(ub.costUsd! - (tb.p * 3 + tb.c * 5) / 1e6) < 1e-15, 'b priced from the suite, over the file');
  const html = readFileSync(join(dir, 'out', result.runId, 'report.html'), 'utf8');
  assert.match(html, new RegExp(`${ta.p} / ${ta.c}`));

  const again = await runSuite(suite);
  assert.equal(again.result.cache.misses, 0);
  assert.deepEqual(again.result.usage, {}, 'cached replies spend no tokens');
});

test('a bad prices_file fails before any model is called, naming the file', async () => {
  writeFileSync(join(dir, 'bad-prices.yaml'), stringify({ 'endpoint:a': { input: 'cheap', output: 1 } }));
  const suite = writeSuite('badprice', {
    cache: 'badprice.sqlite',
    models: [{ id: 'a', kind: 'endpoint', base_url: mock.url, model: 'a' }],
    prices_file: 'bad-prices.yaml',
    tasks: [{ id: 'faq', kind: 'generation', dataset: 'gen.jsonl', metrics: ['em'] }],
  });
  const start = mock.requests.length;
  await assert.rejects(
    runSuite(suite),
    (e: unknown) => e instanceof LoomError && /bad-prices\.yaml/.test(e.format()) && /input/.test(e.message),
  );
  assert.equal(mock.requests.length, start);
});

test('a run killed mid-way keeps finished tasks; the rerun takes finished items from the cache and completes', async () => {
  // The endpoint answers 5 requests (all of task 1, one of task 2), then stalls; the CLI process is then killed.
  const stallAfter = 5;
  let served = 0;
  behaviour = (r) => {
    if (served >= stallAfter) return { stallMs: 2_000 };
    served++;
    return { reply: answers.get(lastUser(r))! };
  };
  const suite = writeSuite('resume', {
    cache: 'resume.sqlite',
    models: [{ id: 'ep', kind: 'endpoint', base_url: mock.url, model: 'm' }],
    tasks: [
      { id: 'one', kind: 'generation', dataset: 'gen.jsonl', metrics: ['em'] },
      { id: 'two', kind: 'generation', dataset: 'gen2.jsonl', metrics: ['em'] },
    ],
  });
  const start = mock.requests.length;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', resolve('src/cli/main.ts'), 'eval', 'run', suite, '--parallel', '1', '--no-registry'],
    { stdio: 'ignore' },
  );
  // With one item in flight, request 6 is sent only after reply 5 was cached.
  const deadline = Date.now() + 20_000;
  while (mock.requests.length - start <= stallAfter && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  assert.ok(mock.requests.length - start > stallAfter, 'the CLI reached the stalling request');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  const runs = readdirSync(join(dir, 'out')).filter((d) => d.startsWith('resume-'));
  assert.equal(runs.length, 1);
  const partial = JSON.parse(readFileSync(join(dir, 'out', runs[0]!, 'results.json'), 'utf8')) as RunResult;
  assert.equal(partial.finished, undefined);
  assert.deepEqual(
    partial.tasks.map((t) => t.task),
    ['one'],
    'the finished task is on disk',
  );
  assert.equal(partial.tasks[0]!.summary.em!.score, 1);
  assert.match(readFileSync(join(dir, 'out', runs[0]!, 'report.html'), 'utf8'), /partial run/);

  behaviour = (r) => ({ reply: answers.get(lastUser(r))! });
  const before = mock.requests.length;
  const { result } = await runSuite(suite);
  assert.deepEqual(result.cache, { hits: stallAfter, misses: 2 * QA.length - stallAfter });
  assert.equal(mock.requests.length - before, 2 * QA.length - stallAfter);
  assert.ok(result.finished);
  assert.deepEqual(
    result.tasks.map((t) => [t.task, t.examples.length, t.errors.length, t.summary.em!.score]),
    [
      ['one', 4, 0, 1],
      ['two', 4, 0, 1],
    ],
  );
});

test('the cache keys a local model by its weights and an endpoint by its URL', () => {
  const m = join(dir, 'model');
  mkdirSync(m, { recursive: true });
  writeFileSync(join(m, 'config.json'), '{"hidden_size": 8}');
  writeFileSync(join(m, 'model.safetensors'), 'weights-v1');
  const spec: ModelSpec = { id: 'base', kind: 'local', path: m };
  const f1 = modelFingerprint(spec, dir);
  assert.equal(modelFingerprint(spec, dir), f1, 'stable');
  writeFileSync(join(m, 'model.safetensors'), 'weights-v2-retrained');
  const f2 = modelFingerprint(spec, dir);
  assert.notEqual(f2, f1, 'retrained weights (new size) are a new model');
  utimesSync(join(m, 'model.safetensors'), new Date(0), new Date(1_000_000));
  assert.notEqual(modelFingerprint(spec, dir), f2, 'rewritten weights (new mtime) are a new model');
  writeFileSync(join(m, 'config.json'), '{"hidden_size": 16}');
  assert.notEqual(modelFingerprint(spec, dir), f2);
  const ep = (base_url: string): ModelSpec => ({
    id: 'x',
    kind: 'endpoint',
    base_url,
    model: 'same-name',
    max_retries: 0,
    timeout_ms: 1000,
  });
  assert.notEqual(modelFingerprint(ep('http://a/v1'), dir), modelFingerprint(ep('http://b/v1'), dir));
});

test('compare: two systems with equal scores are not significantly different (p = 1), even with different outputs', () => {
  const task = (model: string, hyp: string): TaskRunResult => ({
    task: 'faq',
    kind: 'generation',
    model,
    prompt: 'p@1',
    scoring: '13a',
    summary: { bleu: { score: 0 } },
    examples: ['1', '2', '3'].map((id) => ({
      id,
      input: 'q',
      hypothesis: hyp,
      references: ['the parcel ships on monday'],
      scores: {},
    })),
    errors: [],
  });
  const run: RunResult = {
    runId: 'r',
    suite: 's',
    suitePath: 's.yaml',
    configHash: 'h',
    started: '',
    models: [],
    tasks: [task('a', 'xxx'), task('b', 'yyy zzz')],
    usage: {},
    cache: { hits: 0, misses: 0 },
    errors: [],
  };
  const rows = compareRuns(run, undefined, { baseline: 'a' });
  assert.equal(rows[0]!.delta, 0);
  assert.equal(rows[0]!.pValue, 1);

  // two runs, each with one prompt version (v1 before, v2 after): compared although the prompt keys differ
  const v1: RunResult = { ...run, runId: 'before', tasks: [{ ...task('a', 'xxx'), prompt: 'p@1' }] };
  const v2: RunResult = {
    ...run,
    runId: 'after',
    tasks: [{ ...task('a', 'the parcel ships on monday'), prompt: 'p@2' }],
  };
  const across = compareRuns(v1, v2);
  assert.equal(across.length, 1);
  assert.equal(across[0]!.baseline, 'before:a/p@1');
  assert.equal(across[0]!.system, 'after:a/p@2');
  assert.ok(Math.abs(across[0]!.systemScore - 100) < 1e-9, 'hypothesis equal to the reference: BLEU 100');
  assert.ok(existsSync(dir));
});

test('registry lineage: an eval links each local model to the train run that wrote it, and names its datasets', () => {
  const trainDir = join(dir, 'train-lora');
  mkdirSync(join(trainDir, 'adapter'), { recursive: true });
  writeFileSync(join(trainDir, 'lineage.json'), JSON.stringify({ run_id: 'train-abc' }));
  const reg = new Registry(':memory:');
  reg.upsertRun({ id: 'train-abc', kind: 'train', status: 'finished', outputDir: trainDir, config: {}, createdAt: '' });
  const run: RunResult = {
    runId: 'eval-1',
    suite: 's',
    suitePath: 's.yaml',
    configHash: 'h',
    started: '2026-01-01T00:00:00Z',
    finished: '2026-01-01T00:01:00Z',
    models: [{ id: 'lora', modelId: 'local:lora', kind: 'local', path: '/base', adapter: join(trainDir, 'adapter') }],
    tasks: [],
    usage: {},
    cache: { hits: 0, misses: 0 },
    errors: [],
    datasets: [{ task: 'faq', path: '/data/test.jsonl', sha256: 'f00' }],
  };
  recordEvalRun(reg, run, '/out/eval-1');
  const row = reg.db.prepare('SELECT source_run FROM eval_models WHERE run_id = ?').get('eval-1') as {
    source_run: string;
  };
  assert.equal(row.source_run, 'train-abc');
  const rec = reg.getRun('eval-1')!;
  assert.equal(rec.parentId, 'train-abc');
  assert.deepEqual((rec.config as { datasets: unknown }).datasets, run.datasets);
  reg.close();
});
