/**
 * chunkedCrossEntropy against the unchunked crossEntropy(h · head) and against a float64 loop written here (not
 * the code under test): loss and gradients (hidden rows and head), eager and recomputed gradients, with ignored
 * labels, row weights, a loss scale, uneven pieces and an empty trailing piece.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../../src/engine/index.ts';
import { chunkedCrossEntropy } from '../../src/engine/index.ts';
import { engine, randn, rng } from './helpers.ts';

const H = 6;
const V = 11;

interface Case {
  labels: number[];
  weights: number[];
  h: number[];
  head: number[];
  scale: number;
}

function makeCase(n: number, seed: number): Case {
  const r = rng(seed);
  const labels = Array.from({ length: n }, (_, i) => (i % 4 === 1 ? -100 : Math.floor(r() * V)));
  return {
    labels,
    weights: Array.from({ length: n }, () => 0.25 + r()),
    h: randn(r, n * H, -2, 2),
    head: randn(r, H * V, -1, 1),
    scale: 0.75,
  };
}

/** float64 reference of scale · Σ w·ce / Σ w and its gradients, from the float32-rounded inputs. */
function reference(c: Case) {
  const n = c.labels.length;
  const h = c.h.map(Math.fround);
  const hd = c.head.map(Math.fround);
  const w = c.weights.map((x, i) => (c.labels[i] === -100 ? 0 : Math.fround(x)));
  const den = Math.max(
    w.reduce((a, b) => a + b, 0),
    1e-12,
  );
  let loss = 0;
  const dh = new Float64Array(n * H);
  const dhead = new Float64Array(H * V);
  for (let i = 0; i < n; i++) {
    const z = new Float64Array(V);
    for (let v = 0; v < V; v++) for (let k = 0; k < H; k++) z[v]! += h[i * H + k]! * hd[k * V + v]!;
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, b) => a + Math.exp(b - m), 0));
    const y = c.labels[i]!;
    if (y === -100) continue;
    loss += (w[i]! * (lse - z[y]!)) / den;
    for (let v = 0; v < V; v++) {
      const dz = ((Math.exp(z[v]! - lse) - (v === y ? 1 : 0)) * w[i]! * c.scale) / den;
      for (let k = 0; k < H; k++) {
        dh[i * H + k]! += dz * hd[k * V + v]!;
        dhead[k * V + v]! += dz * h[i * H + k]!;
      }
    }
  }
  return { loss: loss * c.scale, dh: [...dh], dhead: [...dhead] };
}

type Mode = { kind: 'unchunked' } | { kind: 'chunked'; chunks: number; eager: boolean };

async function run(c: Case, mode: Mode) {
  const g = new E.Graph('ce');
  const h = g.input('h', 'float32', ['n', H]);
  const head = g.input('head', 'float32', [H, V]);
  const labels = g.input('labels', 'int64', ['n']);
  const weights = g.input('weights', 'float32', ['n']);
  const scale = g.input('scale', 'float32', []);
  const loss =
    mode.kind === 'unchunked'
      ? E.crossEntropy(E.matmul(h, head), labels, { weights })
      : chunkedCrossEntropy(h, head, labels, {
          chunks: mode.chunks,
          weights,
          eagerGrad: mode.eager,
          headGrad: mode.eager,
        });
  const scaled = E.mul(loss, scale);
  const [dh, dhead] = E.grad(scaled, [h, head]);
  g.output('loss', scaled);
  g.output('dh', dh!);
  g.output('dhead', dhead!);
  const n = c.labels.length;
  const s = await (await engine()).load(E.toOnnx(g));
  try {
    const out = await s.run({
      h: E.hostTensor('float32', [n, H], c.h),
      head: E.hostTensor('float32', [H, V], c.head),
      labels: E.hostTensor('int64', [n], c.labels),
      weights: E.hostTensor('float32', [n], c.weights),
      scale: E.hostTensor('float32', [], [c.scale]),
    });
    return { loss: E.toNumbers(out.loss!)[0]!, dh: E.toNumbers(out.dh!), dhead: E.toNumbers(out.dhead!) };
  } finally {
    await s.release();
  }
}

/** Normwise relative error max|a − b| / max|b|. */
function rel(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

for (const [rows, chunks] of [
  [10, 4], // pieces of 3, 3, 3, 1
  [3, 4], // pieces of 1, 1, 1 and an empty one
  [16, 1],
  [16, 5],
] as const) {
  for (const eager of [true, false]) {
    test(`chunkedCrossEntropy ${rows} rows in ${chunks} pieces (${eager ? 'eager' : 'recomputed'} gradient) = unchunked = float64`, async () => {
      const c = makeCase(rows, 7 + rows + chunks);
      const want = reference(c);
      const base = await run(c, { kind: 'unchunked' });
      const got = await run(c, { kind: 'chunked', chunks, eager });
      assert.ok(Math.abs(got.loss - base.loss) <= 1e-6 * Math.abs(base.loss), `loss ${got.loss} vs ${base.loss}`);
      assert.ok(rel(got.dh, base.dh) <= 1e-6, `dh vs unchunked: ${rel(got.dh, base.dh)}`);
      assert.ok(rel(got.dhead, base.dhead) <= 1e-6, `dhead vs unchunked: ${rel(got.dhead, base.dhead)}`);
      // float32 arithmetic against the float64 loop
      assert.ok(Math.abs(got.loss - want.loss) <= 1e-6 * Math.abs(want.loss), `loss ${got.loss} vs f64 ${want.loss}`);
      assert.ok(rel(got.dh, want.dh) <= 1e-5, `dh vs float64: ${rel(got.dh, want.dh)}`);
      assert.ok(rel(got.dhead, want.dhead) <= 1e-5, `dhead vs float64: ${rel(got.dhead, want.dhead)}`);
    });
  }
}

test('chunkedCrossEntropy: eager gradients are differentiated as one unit (no LogSoftmax in the backward)', () => {
  const g = new E.Graph('ce');
  const h = g.input('h', 'float32', ['n', H]);
  const head = g.weight('head', E.hostTensor('float32', [H, V], new Array(H * V).fill(0.1)));
  const loss = chunkedCrossEntropy(h, head, g.input('labels', 'int64', ['n']), { chunks: 3, eagerGrad: true });
  const before = g.nodes.filter((n) => n.op === 'LogSoftmax').length;
  E.grad(loss, [h]);
  assert.equal(before, 3);
  assert.equal(g.nodes.filter((n) => n.op === 'LogSoftmax').length, 3);
  assert.throws(() => chunkedCrossEntropy(h, head, g.input('l2', 'int64', ['n']), { chunks: 0 }), /chunks 0/);
});
