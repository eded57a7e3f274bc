import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { LoomError } from '../../src/core/errors.ts';
import { Mulberry32 } from '../../src/core/rng.ts';
import { parameterCount, presetConfig } from '../../src/models/config.ts';
import {
  createModelFolder,
  loadWeights,
  modelInfo,
  newModel,
  openModelFolder,
  saveModelFolder,
} from '../../src/models/folder.ts';
import { type TensorData, writeSafetensors } from '../../src/models/safetensors.ts';
import { LoomTokenizer } from '../../src/tokenizer/tokenizer.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'loom-folder-'));

test('mulberry32 reference values (seed 1) and normals with mean 0, variance 1', () => {
  // mulberry32 (Tommy Ettinger). Expected words from an independent Python port with explicit uint32 arithmetic;
  // the first, 0.6270739405881613, is the value commonly quoted for mulberry32(1).
  const r = new Mulberry32(1);
  const firsts = [r.next(), r.next(), r.next()].map((x) => Math.round(x * 4294967296));
  assert.deepEqual(firsts, [2693262067, 11749833, 2265367787]);
  const g = new Mulberry32(7);
  let s = 0;
  let s2 = 0;
  const n = 100000;
  for (let i = 0; i < n; i++) {
    const x = g.normal();
    s += x;
    s2 += x * x;
  }
  assert.ok(Math.abs(s / n) < 0.02);
  assert.ok(Math.abs(s2 / n - 1) < 0.02);
});

test('newModel: HF-style init, seeded and reproducible', () => {
  const c = presetConfig('qwen2-tiny');
  const a = newModel(c, 3);
  const b = newModel(c, 3);
  const other = newModel(c, 4);
  const q = a.get('model.layers.0.self_attn.q_proj.weight');
  assert.ok(q);
  assert.deepEqual(q.dims, [64, 64]);
  assert.deepEqual(q.data, b.get('model.layers.0.self_attn.q_proj.weight')?.data);
  assert.notDeepEqual(q.data, other.get('model.layers.0.self_attn.q_proj.weight')?.data);
  const emb = a.get('model.embed_tokens.weight')?.data as Float32Array;
  const mean = emb.reduce((x, y) => x + y, 0) / emb.length;
  const std = Math.sqrt(emb.reduce((x, y) => x + (y - mean) ** 2, 0) / emb.length);
  assert.ok(Math.abs(mean) < 0.002 && Math.abs(std - 0.02) < 0.001, `mean ${mean} std ${std}`);
  assert.ok(a.get('model.layers.1.input_layernorm.weight')?.data.every((x) => x === 1));
  assert.ok(a.get('model.layers.0.self_attn.k_proj.bias')?.data.every((x) => x === 0));
  assert.equal(
    [...a.values()].reduce((n, t) => n + t.data.length, 0),
    parameterCount(c).total,
  );
});

test('createModelFolder + open + loadWeights + info; tokenizer ships with it', async () => {
  const d = join(tmp(), 'm');
  const { files } = createModelFolder(d, { preset: 'tiny', seed: 1 });
  assert.ok(files.includes('model.safetensors') && files.includes('tokenizer.json'));
  const w = loadWeights(d);
  assert.deepEqual(
    w.get('model.embed_tokens.weight')?.data,
    newModel(presetConfig('tiny'), 1).get('model.embed_tokens.weight')?.data,
  );
  const info = modelInfo(d);
  assert.equal(info.parameters.total, parameterCount(presetConfig('tiny')).total);
  assert.deepEqual(info.storage.dtypes, { F32: 20 });
  const tok = LoomTokenizer.fromFolder(d);
  assert.equal(tok.vocabSize, 512);
  assert.deepEqual(tok.eosIds, [2]);
  const text = 'Where is my order? 订单 🚚';
  assert.equal(await tok.decode(await tok.encode(text)), text);
  assert.throws(
    () => createModelFolder(d, { preset: 'tiny' }),
    (e: unknown) => e instanceof LoomError && e.code === 'OUTPUT_WRITE',
  );
});

test('saving in bfloat16 halves the file and reloads within bf16 precision', () => {
  const dir = tmp();
  const c = presetConfig('qwen3-tiny');
  const weights = newModel(c, 0);
  saveModelFolder(join(dir, 'bf'), { config: c, weights, dtype: 'bfloat16' });
  const f = openModelFolder(join(dir, 'bf'));
  assert.equal(f.config.torchDtype, 'bfloat16');
  assert.equal(f.weights.info('model.layers.0.self_attn.q_norm.weight').dtype, 'BF16');
  f.close();
  const back = loadWeights(join(dir, 'bf'));
  for (const [name, t] of weights) {
    const b = back.get(name)?.data as Float32Array;
    t.data.forEach((v, i) => {
      assert.ok(Math.abs((b[i] as number) - v) <= Math.abs(v) * 2 ** -8, name);
    });
  }
  rmSync(dir, { recursive: true });
});

test('shape or name mismatches against config.json are MODEL_INVALID naming the tensor', () => {
  const dir = tmp();
  const c = presetConfig('tiny');
  saveModelFolder(dir, { config: c, weights: newModel(c, 0) });
  const good = loadWeights(dir);
  // Wrong shape for one tensor.
  const entries: [string, TensorData][] = [...good].map(([n, t]) =>
    n === 'model.norm.weight' ? [n, { ...t, dims: [32], data: t.data.slice(0, 32) }] : [n, t],
  );
  writeSafetensors(join(dir, 'model.safetensors'), entries);
  assert.throws(
    () => loadWeights(dir),
    (e: unknown) =>
      e instanceof LoomError &&
      e.code === 'MODEL_INVALID' &&
      e.field === 'model.norm.weight' &&
      /\[32\]/.test(e.message),
  );
  // Missing tensor.
  writeSafetensors(
    join(dir, 'model.safetensors'),
    [...good].filter(([n]) => n !== 'model.layers.1.mlp.up_proj.weight'),
  );
  assert.throws(
    () => loadWeights(dir),
    (e: unknown) => e instanceof LoomError && e.field === 'model.layers.1.mlp.up_proj.weight',
  );
  // Integer dtype where a weight belongs.
  writeSafetensors(
    join(dir, 'model.safetensors'),
    [...good].map(([n, t]) =>
      n === 'model.norm.weight'
        ? [n, { dtype: 'I32' as const, shape: t.dims, data: new Int32Array(t.data.length) }]
        : [n, t],
    ),
  );
  assert.throws(
    () => loadWeights(dir),
    (e: unknown) => e instanceof LoomError && /dtype I32/.test(e.message),
  );
  rmSync(dir, { recursive: true });
});

test('CLI: loom model new / info --json', () => {
  const d = join(tmp(), 'cli');
  const out = execFileSync(
    './bin/loom.js',
    ['model', 'new', d, '--preset', 'qwen3-tiny', '--set', 'num_hidden_layers=3', '--json'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(JSON.parse(out).parameters, parameterCount(presetConfig('qwen3-tiny', { num_hidden_layers: 3 })).total);
  const info = JSON.parse(execFileSync('./bin/loom.js', ['model', 'info', d, '--json'], { encoding: 'utf8' }));
  assert.equal(info.architecture, 'qwen3');
  assert.equal(info.shape.numLayers, 3);
  assert.equal(info.features.qkNorm, true);
  assert.equal(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')).head_dim, 32);
});

test('createModelFolder with tokenizerFrom copies that tokenizer (real Qwen3 files) instead of the tiny one', async () => {
  const src = tmp();
  const fx = join(import.meta.dirname, '..', 'fixtures', 'tokenizer', 'qwen3');
  const json = gunzipSync(readFileSync(join(fx, 'tokenizer.json.gz')));
  writeFileSync(join(src, 'tokenizer.json'), json);
  writeFileSync(join(src, 'tokenizer_config.json'), readFileSync(join(fx, 'tokenizer_config.json')));
  const d = join(tmp(), 'q');
  createModelFolder(d, {
    preset: 'tiny',
    overrides: { vocab_size: 151669, hidden_size: 16, num_attention_heads: 2, num_key_value_heads: 1 },
    tokenizerFrom: src,
  });
  assert.ok(readFileSync(join(d, 'tokenizer.json')).equals(json));
  const tok = LoomTokenizer.fromFolder(d);
  assert.equal(tok.vocabSize, 151669);
  assert.ok(tok.eosIds.includes(151645)); // <|im_end|> as published
  assert.match(tok.chatTemplate ?? '', /enable_thinking/); // Qwen3's own template, not the tiny chatml
  assert.throws(
    () => createModelFolder(join(tmp(), 'x'), { preset: 'tiny', tokenizerFrom: join(src, 'nope') }),
    (e: unknown) => e instanceof LoomError && e.code === 'TOKENIZER',
  );
});
