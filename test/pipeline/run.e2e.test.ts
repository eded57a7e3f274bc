import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { Registry } from '../../src/registry/db.ts';
import { PipelineStages } from '../../src/registry/pipeline.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'bin/loom.js');
// the project's own .loom/registry.db, not one the environment points at
const { LOOM_REGISTRY: _ignored, ...ENV } = process.env;

function loom(args: string[], cwd: string): ChildProcess {
  return spawn(process.execPath, [MAIN, ...args], {
    cwd,
    env: ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function run(args: string[], cwd: string): Promise<{ code: number | null; out: string; err: string }> {
  const p = loom(args, cwd);
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
  return { code, out, err };
}

/** stage → ran/skipped from the tab-separated report on stdout. */
function statuses(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split('\t'))
      .filter((c) => c.length >= 4)
      .map((c) => [c[0], c[1]]),
  );
}

test('customer-service project: loom init, loom run end to end, unchanged stages skip, a changed input reruns only its stage', async () => {
  const base = mkdtempSync(join(tmpdir(), 'loom-project-'));
  const dir = join(base, 'shop');
  const init = await run(['init', dir, '--template', 'customer-service'], base);
  assert.equal(init.code, 0, init.err);

  const first = await run(['run', 'pipeline.yaml'], dir);
  assert.equal(first.code, 0, first.err);
  assert.deepEqual(statuses(first.out), { data: 'ran', train: 'ran', eval: 'ran', export: 'ran', serve: 'ran' });
  for (const f of [
    'out/data/train.jsonl',
    'out/train/lora/adapter',
    'out/export/config.json',
    'out/serve/endpoint.json',
  ]) {
    assert.ok(existsSync(join(dir, f)), f);
  }
  const endpoint = JSON.parse(readFileSync(join(dir, 'out/serve/endpoint.json'), 'utf8')) as {
    smoke: { reply: string };
  };
  assert.equal(typeof endpoint.smoke.reply, 'string');

  const again = await run(['run'], dir);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(statuses(again.out), {
    data: 'skipped',
    train: 'skipped',
    eval: 'skipped',
    export: 'skipped',
    serve: 'skipped',
  });
  assert.match(again.err, /== train: skipped \(inputs and config unchanged since run pipeline-train-/);

  // an edit to eval.yaml reruns eval only; a deleted export is rewritten and, being byte-identical, serve skips
  appendFileSync(join(dir, 'eval.yaml'), '# edited\n');
  rmSync(join(dir, 'out/export'), { recursive: true });
  const edited = await run(['run'], dir);
  assert.equal(edited.code, 0, edited.err);
  assert.deepEqual(statuses(edited.out), {
    data: 'skipped',
    train: 'skipped',
    eval: 'ran',
    export: 'ran',
    serve: 'skipped',
  });
  assert.match(edited.err, /== eval: running \(eval\.yaml changed\)/);
  assert.match(edited.err, /== export: running \(output out\/export is missing\)/);

  // every executed stage is a run in the registry, chained by parent; train's own runs hang under its stage run
  const reg = new Registry(join(dir, '.loom/registry.db'));
  const stages = new PipelineStages(reg);
  const runs = reg.listRuns();
  const trainStage = runs.find((r) => r.kind === 'pipeline:train')!;
  const evalStage = runs.find((r) => r.kind === 'pipeline:eval')!;
  assert.equal(evalStage.parentId, trainStage.id);
  assert.equal(trainStage.parentId, runs.find((r) => r.kind === 'pipeline:data')!.id);
  assert.equal(stages.children(trainStage.id).length, 2, 'pretrain + LoRA');
  reg.close();

  // lineage both ways: the export's upstream names data.yaml by its sha256 (computed here, independently)
  const lin = await run(['lineage', 'out/export', '--json'], dir);
  assert.equal(lin.code, 0, lin.err);
  const l = JSON.parse(lin.out) as {
    target: { kind: string };
    upstream: { kind: string; inputs?: Record<string, string> }[];
    downstream: { kind: string }[];
  };
  assert.equal(l.target.kind, 'pipeline:export');
  const dataHash = createHash('sha256')
    .update(readFileSync(join(dir, 'data.yaml')))
    .digest('hex');
  assert.equal(l.upstream.find((n) => n.kind === 'pipeline:data')?.inputs?.['data.yaml'], dataHash);
  assert.deepEqual(
    l.upstream.map((n) => n.kind),
    ['pipeline:eval', 'pipeline:train', 'pipeline:data'],
  );
  assert.deepEqual(
    l.downstream.map((n) => n.kind),
    ['pipeline:serve'],
  );
  const fromData = await run(['lineage', 'out/data/train.jsonl'], dir);
  assert.equal(fromData.code, 0, fromData.err);
  assert.match(fromData.out, /downstream[\s\S]*pipeline:serve/);
  const unknown = await run(['lineage', 'no-such-run'], dir);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /no recorded run made or holds 'no-such-run'/);

  const only = await run(['run', '--only', 'data', '--force'], dir);
  assert.deepEqual(statuses(only.out), { data: 'ran' });
});

test('a pipeline killed during training resumes: data skips, train continues from its checkpoint', async () => {
  const base = mkdtempSync(join(tmpdir(), 'loom-project-kill-'));
  const dir = join(base, 'shop');
  assert.equal((await run(['init', dir, '--template', 'customer-service'], base)).code, 0);
  const p = loom(['run'], dir);
  const ckpt = join(dir, 'out/train/pretrain/checkpoints');
  const closed = new Promise<NodeJS.Signals | null>((r) => p.on('close', (_c, s) => r(s)));
  const t0 = Date.now();
  while (!(existsSync(ckpt) && readdirSync(ckpt).length > 0)) {
    if (Date.now() - t0 > 120_000) throw new Error('no checkpoint within 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  p.kill('SIGKILL');
  assert.equal(await closed, 'SIGKILL');
  assert.ok(!existsSync(join(dir, 'out/train/lora/adapter')), 'killed before the LoRA finished');

  const resumed = await run(['run'], dir);
  assert.equal(resumed.code, 0, resumed.err);
  assert.match(resumed.err, /== data: skipped/);
  assert.match(resumed.err, /== train: running \(.*did not finish\)/);
  assert.match(resumed.err, /pretrain\.yaml: resuming from the newest checkpoint/);
  assert.deepEqual(statuses(resumed.out), { data: 'skipped', train: 'ran', eval: 'ran', export: 'ran', serve: 'ran' });
});
