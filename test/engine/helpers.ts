/** Shared test helpers: a seeded PRNG, an in-thread engine, and a central-difference gradient checker. */
import assert from 'node:assert/strict';
import {
  type Dim,
  type DType,
  Engine,
  Graph,
  grad,
  type HostTensor,
  hostTensor,
  mul,
  reduceSum,
  type Tensor,
  toNumbers,
  toOnnx,
} from '../../src/engine/index.ts';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

export function randn(r: () => number, n: number, lo = -1, hi = 1): number[] {
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

let shared: Promise<Engine> | undefined;
/** One in-thread engine per test process (2 threads), closed at exit. */
export function engine(): Promise<Engine> {
  shared ??= Engine.create({ threads: 2, inThread: true });
  return shared;
}

export async function runGraph(g: Graph, feeds: Record<string, HostTensor>, fused = false) {
  const s = await (await engine()).load(toOnnx(g, { fused }));
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  what = '',
) {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = Math.abs(a - e) <= atol + rtol * Math.max(Math.abs(a), Math.abs(e));
    if (!ok) assert.fail(`${what}[${i}]: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
  }
}

export interface InputSpec {
  shape: number[];
  /** Graph-side shape (symbols allowed); defaults to `shape`. */
  dims?: Dim[];
  dtype?: DType;
  values?: number[];
  lo?: number;
  hi?: number;
  /** Not differentiated (e.g. indices, masks). */
  noGrad?: boolean;
}

export interface GradCheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
  /** Concrete output shape when the graph's output shape is symbolic. */
  outShape?: number[];
}

/**
 * Central-difference check of grad(): loss = sum(build(xs) * R) with random R, analytic gradients from one ORT
 * run, numeric ones from 2 forward runs per element.
 */
export async function checkGrad(
  build: (g: Graph, xs: Tensor[]) => Tensor,
  specs: InputSpec[],
  o: GradCheckOptions = {},
) {
  const r = rng(o.seed ?? 7);
  const g = new Graph('gradcheck');
  const xs = specs.map((s, i) => g.input(`x${i}`, s.dtype ?? 'float64', s.dims ?? s.shape));
  const out = build(g, xs);
  const outShape = o.outShape ?? (out.shape as number[]);
  assert.ok(
    outShape.every((d) => typeof d === 'number'),
    'checkGrad: pass outShape for a symbolic output',
  );
  const R = g.input('r', out.dtype, out.shape as Dim[]);
  const loss = out.rank === 0 ? mul(out, R) : reduceSum(mul(out, R), [...Array(out.rank).keys()], false);
  const diff = specs.map((s, i) => (s.noGrad ? -1 : i)).filter((i) => i >= 0);
  const grads = grad(
    loss,
    diff.map((i) => xs[i]!),
  );
  g.output('loss', loss);
  diff.forEach((i, k) => {
    g.output(`g${i}`, grads[k]!);
  });
  const feeds: Record<string, HostTensor> = {};
  specs.forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    feeds[`x${i}`] = hostTensor(s.dtype ?? 'float64', s.shape, s.values ?? randn(r, n, s.lo, s.hi));
  });
  const nOut = outShape.reduce((a, b) => a * b, 1);
  feeds.r = hostTensor(out.dtype, outShape, randn(r, nOut));
  const eng = await engine();
  const sess = await eng.load(toOnnx(g));
  try {
    const res = await sess.run(feeds);
    for (const i of diff) {
      const spec = specs[i]!;
      const isF32 = (spec.dtype ?? 'float64') !== 'float64';
      const eps = o.eps ?? (isF32 ? 1e-2 : 1e-6);
      const atol = o.atol ?? (isF32 ? 2e-3 : 1e-7);
      const rtol = o.rtol ?? (isF32 ? 1e-2 : 1e-5);
      const analytic = toNumbers(res[`g${i}`]!);
      const base = feeds[`x${i}`]!;
      const numeric: number[] = [];
      for (let j = 0; j < analytic.length; j++) {
        const lossAt = async (delta: number) => {
          const data = base.data.slice() as Float64Array;
          data[j] = (data[j] as number) + delta;
          const r2 = await sess.run({ ...feeds, [`x${i}`]: { ...base, data } }, ['loss']);
          return toNumbers(r2.loss!)[0]!;
        };
        numeric.push(((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps));
      }
      assertClose(analytic, numeric, atol, rtol, `d loss / d x${i}`);
    }
  } finally {
    await sess.release();
  }
}
