/** Runtime: worker-hosted sessions, transfers, errors, external data, CUDA absence. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../../src/engine/index.ts';
import { randn, rng } from './helpers.ts';

function heavyGraph(n: number) {
  const g = new E.Graph();
  const x = g.input('x', 'float32', [n, n]);
  let y = x;
  for (let i = 0; i < 6; i++) y = E.tanh(E.matmul(y, x));
  g.output('y', y);
  g.output('first', E.slice(E.reshape(y, [-1]), [0], [1], [0]));
  return g;
}

test('worker engine: the event loop keeps ticking while a session runs', async () => {
  const engine = await E.Engine.create({ threads: 1 });
  try {
    const n = 512;
    const s = await engine.load(E.toOnnx(heavyGraph(n)));
    assert.deepEqual(s.inputNames, ['x']);
    const x = E.hostTensor('float32', [n, n], randn(rng(1), n * n, -0.05, 0.05));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    const t0 = performance.now();
    let runs = 0;
    while (performance.now() - t0 < 150 || runs < 2) {
      const r = await s.run({ x }, ['first']);
      assert.equal(r.first!.data.length, 1);
      runs++;
    }
    clearInterval(timer);
    assert.ok(ticks >= 5, `only ${ticks} timer ticks during ${runs} runs`);
    await s.release();
    await assert.rejects(s.run({ x }), (e: Error & { code?: string }) => e.code === 'RUNTIME');
  } finally {
    await engine.close();
  }
});

test('feeds: subarray views, transfer option, dtypes back', async () => {
  const engine = await E.Engine.create({ threads: 1 });
  try {
    const g = new E.Graph();
    const a = g.input('a', 'float32', ['n']);
    const ids = g.input('ids', 'int64', ['n']);
    g.output('y', E.mul(a, E.cast(ids, 'float32')));
    g.output('b', E.greater(a, 0));
    const s = await engine.load(E.toOnnx(g));
    const big = new Float32Array([9, 1, -2, 3, 9]);
    const view = big.subarray(1, 4);
    const r = await s.run({
      a: { dtype: 'float32', dims: [3], data: view },
      ids: E.hostTensor('int64', [3], [1, 2, 3]),
    });
    assert.ok(r.y!.data instanceof Float32Array);
    assert.deepEqual(Array.from(r.y!.data as Float32Array), [1, -4, 9]);
    assert.equal(r.b!.dtype, 'bool');
    assert.deepEqual(Array.from(r.b!.data as Uint8Array), [1, 0, 1]);
    assert.equal(big[1], 1, 'caller data untouched');
    const own = E.hostTensor('float32', [3], [1, 2, 3]);
    const r2 = await s.run({ a: own, ids: E.hostTensor('int64', [3], [1, 1, 1]) }, ['y'], { transfer: true });
    assert.deepEqual(Object.keys(r2), ['y']);
    assert.equal(own.data.length, 0, 'transferred buffer is detached');
  } finally {
    await engine.close();
  }
});

test('errors: missing feed is a RUNTIME LoomError; bad model bytes too', async () => {
  const engine = await E.Engine.create({ threads: 1 });
  try {
    const g = new E.Graph();
    g.output('y', E.neg(g.input('x', 'float32', [1])));
    const s = await engine.load(E.toOnnx(g));
    await assert.rejects(s.run({}), (e: Error & { code?: string }) => e.code === 'RUNTIME' && /x/.test(e.message));
    await assert.rejects(
      engine.load(new Uint8Array([1, 2, 3])),
      (e: Error & { code?: string }) => e.code === 'RUNTIME',
    );
  } finally {
    await engine.close();
  }
});

test('device cuda without the CUDA provider gives a clear RUNTIME error', async (t) => {
  let engine: E.Engine | undefined;
  try {
    engine = await E.Engine.create({ device: 'cuda' });
  } catch (e) {
    const err = e as Error & { code?: string; hint?: string };
    assert.equal(err.code, 'RUNTIME');
    assert.match(err.hint ?? '', /onnxruntime-node-install/);
    return;
  }
  t.diagnostic('CUDA provider present: skipping the absence check');
  await engine.close();
});

test('external data: weights in a side file, model loaded by path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-ext-'));
  const engine = await E.Engine.create({ threads: 1 });
  try {
    const r = rng(3);
    const w = randn(r, 64 * 64);
    const g = new E.Graph();
    const x = g.input('x', 'float32', [1, 64]);
    g.output('y', E.matmul(x, g.weight('w', E.hostTensor('float32', [64, 64], w))));
    const bytes = E.toOnnx(g, { externalData: { dir, file: 'model.onnx_data' } });
    assert.ok(bytes.byteLength < 4096, `model proto should be small, is ${bytes.byteLength}`);
    assert.ok(statSync(join(dir, 'model.onnx_data')).size >= 64 * 64 * 4);
    writeFileSync(join(dir, 'model.onnx'), bytes);
    const s = await engine.load(join(dir, 'model.onnx'));
    const xs = randn(r, 64);
    const out = await s.run({ x: E.hostTensor('float32', [1, 64], xs) });
    const want = Array.from({ length: 64 }, (_, j) => xs.reduce((acc, v, i) => acc + v * w[i * 64 + j]!, 0));
    const got = Array.from(out.y!.data as Float32Array);
    for (const [j, v] of got.entries()) assert.ok(Math.abs(v - want[j]!) < 1e-4, `y[${j}] ${v} vs ${want[j]}`);
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('profiling: endProfiling returns the ORT trace with per-node kernel times', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-prof-'));
  const engine = await E.Engine.create({ threads: 1 });
  try {
    const g = new E.Graph();
    g.output('y', E.exp(g.input('x', 'float32', [4])));
    const s = await engine.load(E.toOnnx(g), { profilePrefix: join(dir, 'trace') });
    await s.run({ x: E.hostTensor('float32', [4], [0, 1, 2, 3]) });
    const file = await s.endProfiling();
    const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; args?: { op_name?: string } }[];
    assert.ok(events.some((e) => e.cat === 'Node' && e.args?.op_name === 'Exp'));
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sessions without the CPU memory arena compute the same outputs', async () => {
  const engine = await E.Engine.create({ threads: 1 });
  try {
    const n = 64;
    const model = E.toOnnx(heavyGraph(n));
    const x = E.hostTensor('float32', [n, n], randn(rng(2), n * n, -0.05, 0.05));
    const withArena = await (await engine.load(model)).run({ x }, ['y']);
    const noArena = await (await engine.load(model, { memArena: false })).run({ x }, ['y']);
    assert.deepEqual(Array.from(noArena.y!.data as Float32Array), Array.from(withArena.y!.data as Float32Array));
  } finally {
    await engine.close();
  }
});
