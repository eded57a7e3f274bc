// `loom generate` (raw completion, --json ids) and `loom model score` from the real CLI: the ids equal greedy decoding
// from the library API and from a naive argmax loop written here, and llama.cpp (node-llama-cpp) continues our GGUF
// export of the same model with the same tokens. A training checkpoint runs too, and a damaged one is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Llama, Token } from 'node-llama-cpp';
import { exportArtefact } from '../../src/export/export.ts';
import { openExportSource } from '../../src/export/source.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { generateIds } from '../../src/generate/generate.ts';
import { LoomTokenizer } from '../../src/tokenizer/tokenizer.ts';
import { runTraining } from '../../src/train/trainer.ts';
import { exactF32Context, offlineLlama } from '../../tools/reference/llama-cpp.ts';
import { makeTinyModel } from '../export/tiny-models.ts';
import { cfg, tinyProject } from '../train/helpers.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const { dir: work } = tinyProject({ rows: 16 });
let model: string;
let llama: Llama;
const PROMPT = 'Where is my order 3?';
const N = 10;

before(async () => {
  model = makeTinyModel(work, 'tiny-gen', {});
  llama = await offlineLlama();
});
after(async () => {
  await llama?.dispose();
  rmSync(work, { recursive: true, force: true });
});

function loom(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), MAIN, ...args], {
    cwd: work,
    env: { ...process.env, LOOM_QUIET: '1' },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function generateJson(target: string): { prompt_tokens: number[]; tokens: number[]; text: string } {
  const r = loom([
    'generate',
    target,
    '--prompt',
    PROMPT,
    '--max-new-tokens',
    String(N),
    '--temperature',
    '0',
    '--json',
  ]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(Object.keys(j), ['prompt_tokens', 'tokens', 'text']);
  return j;
}

/** Greedy by full forward passes and argmax (no KV cache, no sampler): the plain definition. */
async function naiveGreedy(lm: CausalLM, prompt: number[], n: number, eos: Set<number>): Promise<number[]> {
  const V = lm.config.vocabSize;
  const out: number[] = [];
  let cur = [...prompt];
  for (let i = 0; i < n; i++) {
    const l = await lm.forward([cur]);
    const at = (cur.length - 1) * V;
    let best = 0;
    for (let v = 1; v < V; v++) if (l[at + v]! > l[at + best]!) best = v;
    if (eos.has(best)) break;
    out.push(best);
    cur = [...cur, best];
  }
  return out;
}

test('loom generate --json: prompt ids, greedy ids equal the library API and a naive argmax loop, text decoded', async () => {
  const j = generateJson(model);
  const tok = LoomTokenizer.fromFolder(model);
  assert.deepEqual(j.prompt_tokens, await tok.encode(PROMPT));
  const lm = await CausalLM.fromFolder(model, { threads: 2 });
  try {
    const eos = [...new Set([...tok.eosIds, ...lm.config.eosTokenId])];
    const [lib] = await generateIds(lm, [j.prompt_tokens], { maxNewTokens: N, temperature: 0, eosIds: eos });
    assert.deepEqual(j.tokens, lib!.ids);
    assert.deepEqual(j.tokens, await naiveGreedy(lm, j.prompt_tokens, N, new Set(eos)));
    assert.ok(j.tokens.length > 0);
    assert.equal(j.text, await tok.decode(j.tokens));
  } finally {
    await lm.close();
  }
  const plain = loom(['generate', model, '--prompt', PROMPT, '--max-new-tokens', String(N)]);
  assert.equal(plain.code, 0, plain.err);
  assert.equal(plain.out, `${j.text}\n`);
});

test('llama.cpp continues our F32 GGUF export of the model with the same greedy tokens', async () => {
  const j = generateJson(model);
  const r = exportArtefact({ input: model, format: 'gguf', dtype: 'fp32', out: join(work, 'gguf'), skipCheck: true });
  const m = await llama.loadModel({ modelPath: r.artefact, gpuLayers: 0 });
  // plain attention over an F32 cache (see test/export/gguf-llama-cpp.test.ts: flash attention rounds to F16)
  const ctx = await exactF32Context(m);
  try {
    const cpp: number[] = [];
    for await (const t of ctx
      .getSequence()
      .evaluate(j.prompt_tokens as Token[], { temperature: 0, yieldEogToken: true })) {
      cpp.push(t);
      if (cpp.length === j.tokens.length) break;
    }
    assert.deepEqual(cpp, j.tokens);
  } finally {
    await ctx.dispose();
    await m.dispose();
  }
});

test('loom generate on a training checkpoint runs the checkpoint weights; a damaged checkpoint is refused naming the file', async () => {
  await runTraining({
    config: cfg({ output_dir: 'run', max_steps: 2, learning_rate: 5e-2 }),
    baseDir: work,
    quiet: true,
    threads: 1,
  });
  const ck = join(work, 'run', 'checkpoints', 'step-000002');
  const j = generateJson(ck);
  const src = openExportSource(ck);
  const lm = await CausalLM.fromWeights(src.config, src.weights, { threads: 2 });
  try {
    const tok = LoomTokenizer.fromFolder(src.tokenizerDir);
    const eos = [...new Set([...tok.eosIds, ...lm.config.eosTokenId])];
    const [lib] = await generateIds(lm, [j.prompt_tokens], { maxNewTokens: N, temperature: 0, eosIds: eos });
    assert.deepEqual(j.tokens, lib!.ids);
  } finally {
    await lm.close();
  }
  const bad = join(work, 'run', 'checkpoints', 'step-bad');
  cpSync(ck, bad, { recursive: true });
  const f = join(bad, 'trainable.safetensors');
  const fd = openSync(f, 'r+');
  writeSync(fd, Buffer.from([0xff, 0xff, 0xff, 0x7f]), 0, 4, statSync(f).size - 8);
  closeSync(fd);
  const r = loom(['generate', bad, '--prompt', PROMPT]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /CHECKPOINT_CORRUPT/);
  assert.ok(r.err.includes(f), r.err);
});

test('loom model score: a 1-token text prints perplexity n/a (null in JSON)', () => {
  const r = loom(['model', 'score', model, '--text', 'a', '--no-special', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual([j.count, j.perplexity, j.meanLogprob], [0, null, null]);
  const t = loom(['model', 'score', model, '--text', 'a', '--no-special']);
  assert.match(t.out, /perplexity n\/a/);
});
