import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { recordEvalRun } from '../../src/eval/records.ts';
import { compareRuns } from '../../src/eval/report/compare.ts';
import { runSuite } from '../../src/eval/suite/runner.ts';
import { Registry } from '../../src/registry/db.ts';
import { type OpenAIMock, startOpenAIMock, unreachableUrl } from '../../tools/mocks/openai-mock.ts';

const QA: [string, string][] = [
  ['How do I return an item?', 'Open the order page and choose return within seven days.'],
  ['Where is my parcel?', 'Send us the order number and we will check the tracking.'],
  ['Can I pay by card?', 'Yes, we accept Visa, Mastercard and UnionPay cards.'],
  ['Do you ship abroad?', 'We ship to most countries; delivery takes five to ten days.'],
];
const CLS: [string, string][] = [
  ['I want a refund for my shoes', 'refund'],
  ['refund please, it broke', 'refund'],
  ['how do I get my money back? refund', 'refund'],
  ['need a refund now', 'refund'],
  ['when will my parcel arrive', 'shipping'],
  ['parcel late, maybe refund?', 'shipping'],
];

let dir: string;
let perfect: OpenAIMock;
let wrong: OpenAIMock;
let down: string;

function close(actual: number, expected: number, msg?: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${msg ?? ''} ${actual} vs ${expected}`);
}

function lastUser(body: { messages: { role: string; content: string }[] }): string {
  return body.messages.filter((m) => m.role === 'user').at(-1)!.content;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'loom-suite-'));
  writeFileSync(
    join(dir, 'gen.jsonl'),
    QA.map(([q, a], i) =>
      JSON.stringify({
        id: `q${i}`,
        messages: [
          { role: 'user', content: q },
          { role: 'assistant', content: a },
        ],
      }),
    ).join('\n'),
  );
  writeFileSync(join(dir, 'cls.jsonl'), CLS.map(([text, label]) => JSON.stringify({ text, label })).join('\n'));
  writeFileSync(
    join(dir, 'mc.jsonl'),
    [
      { question: '2+2?', A: '3', B: '4', C: '5', answer: 'B' },
      { question: 'Capital of France?', A: 'Paris', B: 'Rome', C: 'Oslo', answer: 'A' },
      { question: '1+1?', A: '1', B: '2', C: '3', answer: 'B' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  writeFileSync(
    join(dir, 'scen.yaml'),
    stringify([
      {
        id: 'ask-order',
        user: { mode: 'scripted', turns: ['Where is my parcel?'] },
        goal: [{ type: 'contains', value: 'tracking' }],
      },
    ]),
  );
  const answers = new Map(QA);
  perfect = await startOpenAIMock((req) => {
    const u = lastUser(req.body);
    if (answers.has(u)) return { reply: answers.get(u)! };
    if (/Answer:$/.test(u)) return { reply: 'B' };
    if (u.includes('Classify')) return { reply: u.split('\n\n').at(-1)!.includes('refund') ? 'refund' : 'shipping' };
    return { reply: 'ok' };
  });
  wrong = await startOpenAIMock(() => ({ reply: 'zzz' }));
  down = await unreachableUrl();
});

after(async () => {
  await perfect.close();
  await wrong.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeSuite(models: object[], extra: object = {}): string {
  const p = join(dir, `suite-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    p,
    stringify({
      name: 'cs',
      models,
      prompts: [{ id: 'plain', version: 1 }],
      tasks: [
        { id: 'faq', kind: 'generation', dataset: 'gen.jsonl', metrics: ['bleu', 'chrf', 'rouge', 'em'] },
        { id: 'intent', kind: 'classification', dataset: 'cls.jsonl', labels: ['refund', 'shipping'] },
        { id: 'mc', kind: 'multiple_choice', dataset: 'mc.jsonl' },
        { id: 'talk', kind: 'conversation', scenarios: ['scen.yaml'] },
      ],
      out_dir: 'out',
      cache: 'cache.sqlite',
      bootstrap: { samples: 200, seed: 1 },
      ...extra,
    }),
  );
  return p;
}

test('suite: endpoint models scored side by side, cached on rerun, compared with significance', async () => {
  const suite = writeSuite([
    { id: 'good', kind: 'endpoint', base_url: perfect.url, model: 'good' },
    { id: 'bad', kind: 'endpoint', base_url: wrong.url, model: 'bad' },
  ]);
  const { result, dir: runDir } = await runSuite(suite);
  const get = (task: string, model: string) => result.tasks.find((t) => t.task === task && t.model === model)!;

  // A system that returns the references exactly scores the maximum of every metric; one with no overlap, zero.
  const g = get('faq', 'good');
  close(g.summary.bleu!.score, 100);
  close(g.summary.chrf!.score, 100);
  close(g.summary.rougeL!.score, 1);
  close(g.summary.em!.score, 1);
  assert.equal(g.scoring, '13a');
  const b = get('faq', 'bad');
  close(b.summary.bleu!.score, 0);
  close(b.summary.rougeL!.score, 0);
  assert.ok(g.summary.bleu!.ci, 'bootstrap interval present');

  // Classification by hand: the rule "mentions refund → refund" gets 5 of 6; the shipping row that mentions refund
  // is the one miss. Confusion rows are gold (refund, shipping); columns predicted (refund, shipping, (none)).
  const c = get('intent', 'good');
  assert.equal(c.summary.accuracy!.score, 5 / 6);
  assert.deepEqual(c.confusion!.matrix, [
    [4, 0, 0],
    [1, 1, 0],
  ]);
  // refund: P = 4/5, R = 1 → F1 = 8/9; shipping: P = 1, R = 1/2 → F1 = 2/3; macro = (8/9 + 2/3) / 2
  assert.ok(Math.abs(c.summary.macro_f1!.score - (8 / 9 + 2 / 3) / 2) < 1e-12);

  // Multiple choice without log-likelihoods: the model always says B; answers are B, A, B.
  assert.equal(get('mc', 'good').summary.accuracy!.score, 2 / 3);

  const talk = get('talk', 'good');
  close(talk.summary.goal_success!.score, 1);
  assert.equal(talk.conversations![0]!.turnsToResolution, 1);
  close(get('talk', 'bad').summary.goal_success!.score, 0);

  // results and a self-contained report are on disk
  const saved = JSON.parse(readFileSync(join(runDir, 'results.json'), 'utf8'));
  assert.equal(saved.tasks.length, 8);
  const html = readFileSync(join(runDir, 'report.html'), 'utf8');
  assert.match(html, /Evaluation: cs/);
  assert.doesNotMatch(html, /(src|href)="https?:/);

  // rerun: every generation comes from the cache, scores identical
  const before = perfect.requests.length + wrong.requests.length;
  const again = await runSuite(suite);
  assert.equal(perfect.requests.length + wrong.requests.length, before);
  assert.equal(again.result.cache.misses, 0);
  assert.deepEqual(
    again.result.tasks.map((t) => t.summary),
    result.tasks.map((t) => t.summary),
  );

  // compare inside the run: good vs bad baseline
  const rows = compareRuns(result, undefined, { baseline: 'bad' });
  const bleu = rows.find((r) => r.task === 'faq' && r.metric === 'bleu')!;
  close(bleu.delta, 100);
  assert.ok(bleu.pValue! < 0.05);
  const acc = rows.find((r) => r.task === 'intent' && r.metric === 'accuracy')!;
  assert.equal(acc.baselineScore, 0);
  assert.equal(acc.systemScore, 5 / 6);

  // a run compared with itself: every delta is 0 and no difference is significant
  const self = compareRuns(result, result);
  assert.ok(self.length > 0);
  for (const r of self) {
    assert.equal(r.delta, 0);
    if (r.pValue !== undefined) assert.equal(r.pValue, 1);
  }

  // registry: one eval run with a metric row per task/model/prompt/metric
  const reg = new Registry(':memory:');
  recordEvalRun(reg, result, runDir);
  assert.equal(reg.getRun(result.runId)!.kind, 'eval');
  const m = reg.metrics(result.runId, 'faq/good/plain@1/bleu');
  assert.equal(m[0]!.value, g.summary.bleu!.score);
  reg.close();
});

test('suite: an unreachable endpoint fails fast, is n/a (not 0) and the registry records a failed run', async () => {
  // Default retries (4) and timeout: the single probe before the suite, not per-item retries, decides.
  const suite = writeSuite(
    [
      { id: 'good', kind: 'endpoint', base_url: perfect.url, model: 'good' },
      { id: 'down', kind: 'endpoint', base_url: down, model: 'x' },
    ],
    {
      tasks: [{ id: 'faq', kind: 'generation', dataset: 'gen.jsonl', metrics: ['bleu'] }],
      cache: `cache-${Math.random().toString(36).slice(2)}.sqlite`,
    },
  );
  const before = perfect.requests.length;
  const t0 = performance.now();
  const { result, dir: runDir } = await runSuite(suite);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(seconds < 10, `took ${seconds.toFixed(1)} s`);
  const d = result.tasks.find((t) => t.model === 'down')!;
  assert.ok(d.unreachable && /ECONNREFUSED/.test(d.unreachable) && d.unreachable.includes(down), d.unreachable);
  assert.deepEqual(d.summary, {}, 'no score at all, not 0');
  assert.equal(d.examples.length, 0, 'no item was sent');
  assert.equal(result.models.find((m) => m.id === 'down')!.unreachable, d.unreachable);
  // The reachable model still ran and scored.
  close(result.tasks.find((t) => t.model === 'good')!.summary.bleu!.score, 100);
  assert.equal(perfect.requests.length - before, QA.length);
  assert.ok(result.finished);
  const html = readFileSync(join(runDir, 'report.html'), 'utf8');
  assert.match(html, /<td[^>]*>n\/a \(unreachable\)<\/td>/);
  assert.ok(!/0\.00/.test(html.slice(html.indexOf('<h2>Summary'), html.indexOf('<h2>Details')).split('down')[1]!));

  const reg = new Registry(join(dir, `reg-${Math.random().toString(36).slice(2)}.db`));
  recordEvalRun(reg, result, runDir);
  assert.equal(reg.getRun(result.runId)!.status, 'failed');
  const names = reg.db
    .prepare('SELECT name FROM metrics WHERE run_id = ?')
    .all(result.runId)
    .map((r) => (r as { name: string }).name);
  assert.ok(names.some((n) => n.startsWith('faq/good/')));
  assert.ok(!names.some((n) => n.includes('/down/')), 'no 0.000 recorded for the unreachable model');
  reg.close();
});

test('suite: an endpoint that dies mid-task stops being called (breaker) and its task is n/a', async () => {
  let served = 0;
  // The probe (GET) passes; the first chat request kills the server, so it never gets an HTTP answer.
  const flaky: OpenAIMock = await startOpenAIMock(() => {
    served++;
    void flaky.close();
    return { stallMs: 50 };
  });
  const suite = writeSuite([{ id: 'flaky', kind: 'endpoint', base_url: flaky.url, model: 'f', max_retries: 1 }], {
    tasks: [{ id: 'faq', kind: 'generation', dataset: 'gen.jsonl', metrics: ['bleu'] }],
    cache: `cache-${Math.random().toString(36).slice(2)}.sqlite`,
  });
  const { result } = await runSuite(suite, { parallel: 1 });
  const t = result.tasks[0]!;
  assert.equal(served, 1);
  assert.ok(t.unreachable, 'marked unreachable');
  assert.deepEqual(t.summary, {});
  // The first item used its 2 attempts; the other items failed at once without a request.
  assert.equal(t.errors.filter((e) => /skipped, endpoint unreachable/.test(e)).length, QA.length - 1);
});

test('suite: bad dataset line names file and line', async () => {
  writeFileSync(join(dir, 'broken.jsonl'), '{"text":"a","label":"refund"}\n{oops\n');
  const suite = writeSuite([{ id: 'good', kind: 'endpoint', base_url: perfect.url, model: 'good' }], {
    tasks: [{ id: 'intent', kind: 'classification', dataset: 'broken.jsonl', labels: ['refund', 'shipping'] }],
  });
  const { result } = await runSuite(suite);
  assert.match(result.tasks[0]!.errors[0]!, /broken\.jsonl:2/);
});

test('suite: unknown task kind is a config error naming the key', async () => {
  const p = join(dir, 'bad.yaml');
  writeFileSync(
    p,
    stringify({
      name: 'x',
      models: [{ id: 'a', kind: 'endpoint', model: 'm', base_url: perfect.url }],
      tasks: [{ id: 't', kind: 'essay' }],
    }),
  );
  await assert.rejects(runSuite(p), (e: unknown) => (e as Error).message.includes('tasks.0.kind'));
});

test('loom eval run prints n/a (unreachable) for a closed port, exits 1 and records the run as failed', async () => {
  const { Command } = await import('commander');
  const { registerEvalSuite } = await import('../../src/cli/eval-suite.ts');
  const suite = writeSuite([{ id: 'down', kind: 'endpoint', base_url: down, model: 'x' }], {
    tasks: [{ id: 'faq', kind: 'generation', dataset: 'gen.jsonl', metrics: ['bleu'] }],
  });
  const regPath = join(dir, `cli-reg-${Math.random().toString(36).slice(2)}.db`);
  const prevReg = process.env.LOOM_REGISTRY;
  process.env.LOOM_REGISTRY = regPath;
  const out: string[] = [];
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stderr.write;
  const prevExit = process.exitCode;
  let code: typeof process.exitCode;
  try {
    const program = new Command().exitOverride();
    registerEvalSuite(program.command('eval'));
    await program.parseAsync(['node', 'loom', 'eval', 'run', suite]);
    code = process.exitCode;
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
    process.exitCode = prevExit;
    if (prevReg === undefined) delete process.env.LOOM_REGISTRY;
    else process.env.LOOM_REGISTRY = prevReg;
  }
  const text = out.join('');
  assert.match(text, /faq\tdown\tplain@1\tn\/a \(unreachable\)\n/);
  assert.ok(!/bleu=0\.000/.test(text));
  assert.match(text, /down: endpoint unreachable \(its tasks were not run\): .*ECONNREFUSED/);
  assert.equal(code, 1);
  const reg = new Registry(regPath);
  const runs = reg.db.prepare("SELECT status FROM runs WHERE kind = 'eval'").all() as { status: string }[];
  reg.close();
  assert.deepEqual(
    runs.map((r) => r.status),
    ['failed'],
  );
});
