/**
 * Reverse-mode autodiff. One VJP rule per primitive (keyed by ONNX op type) in the `rules` table below; every
 * rule is written with the same primitive ops, so the backward graph uses standard ONNX ops only (no SoftmaxGrad,
 * GatherGrad, …, which exist only in ORT's training build).
 */
import { LoomError } from '../../core/errors.ts';
import {
  consumerMap,
  factorize,
  fmtShape,
  type Graph,
  type Node,
  regionIsSealed,
  type Tensor,
} from '../graph/graph.ts';
import {
  add,
  arange,
  cast,
  concat,
  cos,
  div,
  equal,
  exp,
  full,
  greater,
  greaterEqual,
  i64,
  lessEqual,
  matmul,
  mul,
  neg,
  pad,
  range,
  reduceSum,
  reshape,
  scatterElements,
  scatterND,
  shapeOf,
  sign,
  sin,
  slice,
  splitBy,
  squeeze,
  sub,
  transpose,
  unsqueeze,
  where,
  zerosLike,
} from '../graph/ops.ts';
import { type Dim, hostTensor, isFloat, toNumbers } from '../graph/types.ts';
import { recomputeSegment, segmentPlan } from './checkpoint.ts';

type Grads = (Tensor | null)[];
/** A VJP rule: node, gradient of its (single) output, which input gradients are wanted. */
type Rule = (n: Node, g: Tensor, need: boolean[]) => Grads;

const inp = (n: Node, i: number): Tensor => n.inputs[i]!;
const out = (n: Node): Tensor => n.outputs[0]!;

function constValues(n: Node, i: number): number[] {
  const t = inp(n, i);
  const v = t.graph.constants.get(t.id);
  if (!v) throw new LoomError('GRAPH', `${n.op}: input ${i} must be a constant for its gradient`);
  return toNumbers(v);
}

function intAttr(n: Node, name: string, dflt: number): number {
  const a = n.attrs[name];
  return a?.kind === 'int' ? a.v : dflt;
}

/** Sum a broadcast gradient back to the operand's shape. */
export function unbroadcast(g: Tensor, target: Tensor): Tensor {
  const lead = g.rank - target.rank;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else if (target.shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
  }
  let r = axes.length ? reduceSum(g, axes, true) : g;
  if (lead > 0) r = squeeze(r, [...Array(lead).keys()]);
  return r;
}

/**
 * The runtime shape of a forward tensor for use in the backward pass, built from its static dims (symbols read
 * off the graph's inputs) instead of Shape(x): a Shape node runs when the backward reaches it, so Shape(x) kept
 * every reshaped forward activation (attention scores, the [B, T, vocab] logits) alive until then. Falls back to
 * Shape(x) when a dim is opaque (only x itself knows it).
 */
function shapeForGrad(x: Tensor): Tensor {
  const g = x.graph;
  if (x.shape.every((d) => typeof d === 'number')) return shapeOf(x);
  const parts: Tensor[] = [];
  for (const d of x.shape) {
    const f = factorize(d);
    if (f.syms.some((s) => s.startsWith('~'))) return shapeOf(x);
    // atomic symbols (batch_size, sequence_length) are carried by graph inputs; a product symbol's own carrier
    // may be a large intermediate, so multiply the factors instead
    let t: Tensor | undefined = f.coef === 1 && f.syms.length > 0 ? undefined : i64(g, [f.coef]);
    for (const s of f.syms) {
      const dt = g.dimTensor(s);
      t = t ? g.addNode('Mul', [t, dt], [{ dtype: 'int64', shape: [1] }])[0]! : dt;
    }
    parts.push(t!);
  }
  return concat(parts, 0);
}

function expandTo(t: Tensor, like: Tensor): Tensor {
  return t.graph.addNode('Expand', [t, shapeForGrad(like)], [{ dtype: t.dtype, shape: like.shape }])[0]!;
}

const swapLast = (t: Tensor): Tensor => {
  const perm = [...Array(t.rank).keys()];
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
  return transpose(t, perm);
};

/** Gradient of a reduction output re-shaped so it broadcasts against the input. */
function keepDimsGrad(n: Node, g: Tensor): { gk: Tensor; axes: number[] } {
  const axes = constValues(n, 1);
  return { gk: intAttr(n, 'keepdims', 1) ? g : unsqueeze(g, axes), axes };
}

function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}

const rules: Record<string, Rule> = {
  Add: (n, g, need) => [need[0] ? unbroadcast(g, inp(n, 0)) : null, need[1] ? unbroadcast(g, inp(n, 1)) : null],
  Sub: (n, g, need) => [need[0] ? unbroadcast(g, inp(n, 0)) : null, need[1] ? unbroadcast(neg(g), inp(n, 1)) : null],
  Mul: (n, g, need) => [
    need[0] ? unbroadcast(mul(g, inp(n, 1)), inp(n, 0)) : null,
    need[1] ? unbroadcast(mul(g, inp(n, 0)), inp(n, 1)) : null,
  ],
  Div: (n, g, need) => [
    need[0] ? unbroadcast(div(g, inp(n, 1)), inp(n, 0)) : null,
    need[1] ? unbroadcast(neg(div(mul(g, out(n)), inp(n, 1))), inp(n, 1)) : null,
  ],
  Max: (n, g, need) => {
    const first = greaterEqual(inp(n, 0), inp(n, 1));
    return [
      need[0] ? unbroadcast(where(first, g, 0), inp(n, 0)) : null,
      need[1] ? unbroadcast(where(first, 0, g), inp(n, 1)) : null,
    ];
  },
  Min: (n, g, need) => {
    const first = lessEqual(inp(n, 0), inp(n, 1));
    return [
      need[0] ? unbroadcast(where(first, g, 0), inp(n, 0)) : null,
      need[1] ? unbroadcast(where(first, 0, g), inp(n, 1)) : null,
    ];
  },
  Pow: (n, g) => {
    const [p] = constValues(n, 1) as [number];
    const x = inp(n, 0);
    const dx = p === 2 ? mul(x, 2) : mul(powConst(x, p - 1), p);
    return [mul(g, dx), null];
  },
  Neg: (_n, g) => [neg(g)],
  Exp: (n, g) => [mul(g, out(n))],
  Log: (n, g) => [div(g, inp(n, 0))],
  Sqrt: (n, g) => [div(mul(g, 0.5), out(n))],
  Tanh: (n, g) => [mul(g, sub(1, mul(out(n), out(n))))],
  Sigmoid: (n, g) => [mul(g, mul(out(n), sub(1, out(n))))],
  Relu: (n, g) => [where(greater(inp(n, 0), 0), g, 0)],
  Abs: (n, g) => [mul(g, sign(inp(n, 0)))],
  Erf: (n, g) => {
    const x = inp(n, 0);
    return [mul(g, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))];
  },
  Sin: (n, g) => [mul(g, cos(inp(n, 0)))],
  Cos: (n, g) => [neg(mul(g, sin(inp(n, 0))))],
  MatMul: (n, g, need) => {
    const a = inp(n, 0);
    const b = inp(n, 1);
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (need[0]) da = unbroadcast(matmul(g, swapLast(b)), a);
    if (need[1]) {
      if (b.rank === 2 && a.rank > 2) {
        // Weight gradient as one [K, rows] x [rows, N] product instead of a batched product plus a reduction.
        const k = a.shape[a.rank - 1]!;
        const nn = g.shape[g.rank - 1]!;
        db = matmul(transpose(reshape(a, [-1, k]), [1, 0]), reshape(g, [-1, nn]));
      } else db = unbroadcast(matmul(swapLast(a), g), b);
    }
    return [da, db];
  },
  ReduceSum: (n, g) => {
    const { gk } = keepDimsGrad(n, g);
    return [expandTo(gk, inp(n, 0)), null];
  },
  ReduceMean: (n, g) => {
    const x = inp(n, 0);
    const { gk, axes } = keepDimsGrad(n, g);
    const dims = axes.map((a) => x.shape[a]!);
    let count: Tensor | number;
    if (dims.every((d) => typeof d === 'number')) count = (dims as number[]).reduce((p, q) => p * q, 1);
    else {
      let c = x.graph.dimTensor(dims[0]!);
      for (const d of dims.slice(1)) c = mul(c, x.graph.dimTensor(d));
      count = cast(c, x.dtype);
    }
    return [div(expandTo(gk, x), count), null];
  },
  ReduceMax: (n, g) => {
    const x = inp(n, 0);
    const { gk, axes } = keepDimsGrad(n, g);
    const yk = intAttr(n, 'keepdims', 1) ? out(n) : unsqueeze(out(n), axes);
    const mask = cast(lessEqual(yk, x), x.dtype);
    return [mul(mask, div(gk, reduceSum(mask, axes, true))), null];
  },
  Reshape: (n, g) => [x(n, g), null],
  Transpose: (n, g) => {
    const perm = n.attrs.perm?.kind === 'ints' ? n.attrs.perm.v : [...Array(g.rank).keys()].reverse();
    return [transpose(g, inversePerm(perm))];
  },
  Unsqueeze: (n, g) => [squeeze(g, constValues(n, 1)), null],
  Squeeze: (n, g) => [unsqueeze(g, constValues(n, 1)), null],
  Concat: (n, g, need) => {
    const axis = intAttr(n, 'axis', 0);
    const dims = n.inputs.map((t) => t!.shape[axis]!);
    const sizes = dims.every((d) => typeof d === 'number')
      ? i64(g.graph, dims as number[])
      : concat(
          dims.map((d) => g.graph.dimTensor(d)),
          0,
        );
    const parts = splitBy(g, axis, sizes, dims);
    return parts.map((p, i) => (need[i] ? p : null));
  },
  Slice: (n, g) => {
    const xin = inp(n, 0);
    const [st] = constValues(n, 1) as [number];
    const [en] = constValues(n, 2) as [number];
    const [a] = constValues(n, 3) as [number];
    const [step] = constValues(n, 4) as [number];
    const d = xin.shape[a]!;
    if (step === 1) {
      // Zero-pad the gradient back to x's extent; pads are computed at run time when the dim is symbolic.
      // (For symbolic dims this assumes in-range indices, which is also what the forward shape assumed.)
      const BIG = 2 ** 62;
      let begin: Tensor | number;
      let endPad: Tensor | number;
      if (typeof d === 'number') {
        const s0 = Math.min(Math.max(st < 0 ? st + d : st, 0), d);
        const e0 = Math.max(Math.min(Math.max(en < 0 ? en + d : en, 0), d), s0);
        begin = s0;
        endPad = d - e0;
      } else {
        const dd = xin.graph.dimTensor(d);
        begin = st >= 0 ? st : add(dd, st);
        endPad = en >= BIG ? 0 : en < 0 ? -en : sub(dd, en);
      }
      return [padRuntime(g, a, begin, endPad, xin.shape), null, null, null, null];
    }
    // General case: scatter the gradient rows into zeros at the sliced positions (axis moved to the front).
    const perm = [a, ...[...Array(xin.rank).keys()].filter((i) => i !== a)];
    const idx = unsqueeze(slice(arange(g.graph, d), [st], [en], [0], [step]), [1]);
    const zerosT = full(g.graph, perm.map((p) => xin.shape[p]!) as Dim[], 0, xin.dtype);
    const scattered = scatterND(zerosT, idx, transpose(g, perm));
    return [transpose(scattered, inversePerm(perm)), null, null, null, null];
  },
  Gather: (n, g) => {
    const xin = inp(n, 0);
    const idx = inp(n, 1);
    const a = intAttr(n, 'axis', 0);
    if (a === 0) return [gatherRowsGrad(xin, idx, g), null];
    const m = idx.rank;
    const xPerm = [a, ...[...Array(xin.rank).keys()].filter((i) => i !== a)];
    const gPerm = [
      ...[...Array(m).keys()].map((i) => a + i),
      ...[...Array(a).keys()],
      ...[...Array(g.rank - a - m).keys()].map((i) => a + m + i),
    ];
    const xT = transpose(xin, xPerm);
    return [transpose(gatherRowsGrad(xT, idx, transpose(g, gPerm)), inversePerm(xPerm)), null];
  },
  GatherElements: (n, g) => {
    const xin = inp(n, 0);
    const zeros = g.graph.addNode('ConstantOfShape', [shapeForGrad(xin)], [{ dtype: xin.dtype, shape: xin.shape }], {
      value: { kind: 'tensor', v: hostTensor(xin.dtype, [1], [0]) },
    })[0]!;
    return [scatterElements(zeros, inp(n, 1), g, intAttr(n, 'axis', 0), 'add'), null];
  },
  Where: (n, g, need) => [
    null,
    need[1] ? unbroadcast(where(inp(n, 0), g, 0), inp(n, 1)) : null,
    need[2] ? unbroadcast(where(inp(n, 0), 0, g), inp(n, 2)) : null,
  ],
  Cast: (n, g) => [isFloat(inp(n, 0).dtype) ? cast(g, inp(n, 0).dtype) : null],
  Softmax: (n, g) => {
    const y = out(n);
    const axis = intAttr(n, 'axis', -1);
    return [mul(y, sub(g, reduceSum(mul(g, y), [axis], true)))];
  },
  LogSoftmax: (n, g) => {
    const axis = intAttr(n, 'axis', -1);
    return [sub(g, mul(exp(out(n)), reduceSum(g, [axis], true)))];
  },
  Identity: (n, g) => [intAttr(n, '_stop', 0) ? null : g],
  Expand: (n, g) => [unbroadcast(g, inp(n, 0)), null],
};

function x(n: Node, g: Tensor): Tensor {
  const xin = inp(n, 0);
  return g.graph.addNode('Reshape', [g, shapeForGrad(xin)], [{ dtype: g.dtype, shape: xin.shape }])[0]!;
}

/** Zero-pad `t` on one axis by `begin`/`end` (numbers or int64 [1] tensors). */
function padRuntime(t: Tensor, axis: number, begin: Tensor | number, end: Tensor | number, outShape: readonly Dim[]) {
  if (typeof begin === 'number' && typeof end === 'number') {
    const pads = new Array<number>(2 * t.rank).fill(0);
    pads[axis] = begin;
    pads[t.rank + axis] = end;
    return pad(t, pads, outShape);
  }
  const g = t.graph;
  const piece = (v: Tensor | number) => (typeof v === 'number' ? i64(g, [v]) : v);
  const pads = concat([piece(begin), piece(end)], 0);
  return g.addNode('Pad', [t, pads, null, i64(g, [axis])], [{ dtype: t.dtype, shape: outShape }], {
    mode: { kind: 'string', v: 'constant' },
  })[0]!;
}

function powConst(t: Tensor, p: number): Tensor {
  if (p === 1) return t;
  return t.graph.addNode('Pow', [t, t.graph.constant(p, t.dtype)], [{ dtype: t.dtype, shape: t.shape }])[0]!;
}

/** The op types that have a VJP rule (for docs and tests). */
export const differentiableOps: readonly string[] = Object.keys(rules);

/**
 * Gradients of `loss` with respect to each tensor in `wrt`, appended to loss's graph. Only the nodes between
 * `wrt` and `loss` are differentiated; a tensor that does not influence the loss gets zeros.
 */
export function grad(loss: Tensor, wrt: Tensor[]): Tensor[] {
  const g: Graph = loss.graph;
  if (!isFloat(loss.dtype)) throw new LoomError('GRAPH', `grad: loss must be a float tensor, got ${loss}`);
  for (const w of wrt) {
    if (w.graph !== g) throw new LoomError('GRAPH', 'grad: wrt tensor belongs to another graph');
    if (!isFloat(w.dtype)) throw new LoomError('GRAPH', `grad: cannot differentiate with respect to ${w}`);
  }
  const end = loss.producer ? loss.producer.index : -1;
  const nodes = g.nodes.slice(0, end + 1);
  const reach = new Set(wrt.map((t) => t.id));
  for (const n of nodes) {
    if (n.op === 'Identity' && intAttr(n, '_stop', 0)) continue;
    if (n.inputs.some((t) => t && reach.has(t.id))) {
      for (const o of n.outputs) if (isFloat(o.dtype)) reach.add(o.id);
    }
  }
  const grads = new Map<number, Tensor>();
  const accumulate = (t: Tensor, gi: Tensor) => {
    const prev = grads.get(t.id);
    grads.set(t.id, prev ? add(prev, gi) : gi);
  };
  // Composites with a custom VJP are differentiated as one unit when nothing outside reads their internals.
  let consumers = consumerMap(g);
  const custom = new Map<number, number>();
  const addCustom = (idx: number) => {
    const r = g.composites[idx]!;
    if (r.vjp && regionIsSealed(g, idx, consumers, false)) custom.set(r.lastNode, idx);
  };
  g.composites.forEach((r, idx) => {
    if (r.lastNode <= end) addCustom(idx);
  });
  // Checkpointed segments (Graph.checkpoint), by their last node.
  const segments = new Map<number, (typeof g.checkpoints)[number]>();
  for (const seg of g.checkpoints) if (seg.lastNode <= end) segments.set(seg.lastNode, seg);

  const walk = (lo: number, hi: number): void => {
    let skipRegion = -1;
    for (let i = hi; i >= lo; i--) {
      const n = g.nodes[i]!;
      if (skipRegion >= 0 && n.composite === skipRegion) continue;
      const seg = segments.get(i);
      const segGrad = seg ? grads.get(seg.output.id) : undefined;
      if (seg && segGrad) {
        const plan = segmentPlan(g, seg, reach, consumers);
        if (plan) {
          const rc = recomputeSegment(g, seg, plan, segGrad, reach);
          consumers = consumerMap(g);
          for (const idx of rc.regions) addCustom(idx);
          grads.set(rc.map.get(seg.output.id)!.id, segGrad);
          walk(rc.lo, rc.hi);
          const dx = grads.get(rc.input.id);
          if (dx && reach.has(seg.input.id)) accumulate(seg.input, dx);
          i = seg.firstNode; // the segment's own nodes are not differentiated
          continue;
        }
      }
      const ri = custom.get(i);
      if (ri !== undefined) {
        const r = g.composites[ri]!;
        const gr = grads.get(r.output!.id);
        const needR = r.inputs.map((t) => reach.has(t.id));
        const res = gr && needR.some(Boolean) ? r.vjp!(gr, needR) : undefined;
        if (res) {
          r.inputs.forEach((t, k) => {
            if (res[k] && needR[k]) accumulate(t, res[k]!);
          });
          skipRegion = ri;
          continue;
        }
      }
      const gOut = n.outputs.length === 1 ? grads.get(n.outputs[0]!.id) : undefined;
      if (n.outputs.length !== 1 && n.outputs.some((o) => grads.has(o.id))) {
        throw new LoomError('GRAPH', `grad: no gradient rule for multi-output op ${n.op}`);
      }
      if (!gOut) continue;
      const need = n.inputs.map((t) => t !== null && reach.has(t.id));
      if (!need.some(Boolean)) continue;
      const rule = rules[n.op];
      if (!rule) {
        throw new LoomError(
          'GRAPH',
          `grad: no gradient rule for op ${n.op} (output ${fmtShape(n.outputs[0]!.shape)})`,
          {
            hint: `differentiable ops: ${differentiableOps.join(', ')}`,
          },
        );
      }
      const ins = rule(n, gOut, need);
      n.inputs.forEach((t, k) => {
        const gi = ins[k];
        if (!t || !gi || !need[k]) return;
        accumulate(t, gi);
      });
    }
  };
  if (reach.has(loss.id)) {
    const seed =
      loss.rank === 0
        ? g.constant(1, loss.dtype)
        : g.addNode('ConstantOfShape', [shapeOf(loss)], [{ dtype: loss.dtype, shape: loss.shape }], {
            value: { kind: 'tensor', v: { dtype: loss.dtype, dims: [1], data: onesOf(loss.dtype) } },
          })[0]!;
    grads.set(loss.id, seed);
    walk(0, end);
  }
  return wrt.map((w) => grads.get(w.id) ?? zerosLike(w));
}

function onesOf(dtype: Tensor['dtype']): Float32Array | Float64Array | Uint16Array {
  if (dtype === 'float64') return Float64Array.of(1);
  if (dtype === 'float16') return Uint16Array.of(0x3c00);
  return Float32Array.of(1);
}

/**
 * Rows of the table chunked so one one-hot block holds at most this many columns: the one-hot matrix is
 * tokens × chunk, so this bounds the backward pass's extra memory for large vocabularies.
 */
const ONE_HOT_CHUNK = 4096;

/**
 * Gradient of gather(x, idx, axis 0) as onehot(idx)ᵀ · g instead of ScatterND(reduction=add): ORT's multi-threaded
 * CPU ScatterND races on duplicate indices (embedding rows repeat in every batch) and loses updates, so the
 * embedding gradient was wrong and run-to-run different with > 1 intra-op thread. MatMul splits its output over
 * threads, never the reduction (token) axis, so each row's sum has one fixed order: exact and deterministic.
 */
function gatherRowsGrad(x: Tensor, idx: Tensor, g: Tensor): Tensor {
  const gr = x.graph;
  const rows = x.shape[0]!;
  const rest = x.shape.slice(1);
  const ids = reshape(cast(idx, 'int64'), [-1, 1]);
  const width = rest.reduce<number | undefined>(
    (p, d) => (p !== undefined && typeof d === 'number' ? p * d : undefined),
    1,
  );
  // Flatten (rather than Reshape) when a trailing dim is symbolic: it needs no static width.
  const gFlat =
    width !== undefined
      ? reshape(g, [-1, width])
      : gr.addNode('Flatten', [g], [{ dtype: g.dtype, shape: [gr.opaqueSymbol('n'), gr.opaqueSymbol('w')] }], {
          axis: { kind: 'int', v: idx.rank },
        })[0]!;
  const block = (ids2: Tensor): Tensor => matmul(transpose(cast(equal(ids, ids2), g.dtype), [1, 0]), gFlat);
  let flat: Tensor;
  if (typeof rows === 'number' && rows > ONE_HOT_CHUNK) {
    const parts: Tensor[] = [];
    for (let r0 = 0; r0 < rows; r0 += ONE_HOT_CHUNK) {
      const r1 = Math.min(rows, r0 + ONE_HOT_CHUNK);
      parts.push(block(unsqueeze(range(gr, r0, r1, 1, 'int64'), [0])));
    }
    flat = concat(parts, 0);
  } else {
    flat = block(unsqueeze(arange(gr, rows), [0]));
  }
  return reshape(flat, x.shape as Dim[]);
}
