/**
 * Primitive ops. Each appends one ONNX node (a few append a short chain) and checks static shapes at build time.
 * Every differentiable primitive has exactly one VJP rule in the `rules` table of autodiff/grad.ts, keyed by the ONNX op type.
 */
import { LoomError } from '../../core/errors.ts';
import { addDims, divDims, factorize, fmtShape, type Graph, mulDims, type Tensor } from './graph.ts';
import { type AttrValue, type Dim, type DType, hostTensor, isFloat, ONNX_DTYPE } from './types.ts';

export type TensorLike = Tensor | number;

const int = (v: number): AttrValue => ({ kind: 'int', v });
const ints = (v: number[]): AttrValue => ({ kind: 'ints', v });

function fail(op: string, msg: string, hint?: string): never {
  throw new LoomError('GRAPH', `${op}: ${msg}`, hint ? { hint } : {});
}

/** int64 1-D constant. */
export function i64(g: Graph, values: number[]): Tensor {
  return g.constant(hostTensor('int64', [values.length], values));
}

function graphOf(op: string, xs: TensorLike[]): Graph {
  for (const x of xs) if (typeof x !== 'number') return x.graph;
  return fail(op, 'at least one operand must be a Tensor');
}

function lift(g: Graph, x: TensorLike, dtype: DType): Tensor {
  return typeof x === 'number' ? g.constant(x, dtype) : x;
}

function dtypeOf(xs: TensorLike[]): DType {
  for (const x of xs) if (typeof x !== 'number') return x.dtype;
  return 'float32';
}

function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(op, `axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** numpy/ONNX broadcasting of static or symbolic shapes; throws on mismatched static dims. */
export function broadcastShapes(op: string, ...shapes: (readonly Dim[])[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i] ?? 1;
      if (e === d || e === 1) continue;
      if (d === 1) d = e;
      else if (typeof d === 'number' && typeof e === 'number') {
        fail(op, `shapes ${shapes.map(fmtShape).join(' and ')} do not broadcast (dim ${d} vs ${e})`);
      } else if (typeof e === 'number') d = e;
    }
    out.push(d);
  }
  return out;
}

function sameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) fail(op, `dtype mismatch ${a} vs ${b}`, 'insert cast(x, dtype)');
}

function binary(op: string, a: TensorLike, b: TensorLike, outDtype?: DType): Tensor {
  const g = graphOf(op, [a, b]);
  const dt = dtypeOf([a, b]);
  const ta = lift(g, a, dt);
  const tb = lift(g, b, dt);
  sameDtype(op, ta, tb);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  return g.addNode(op, [ta, tb], [{ dtype: outDtype ?? dt, shape }])[0]!;
}

function unary(op: string, x: Tensor, floatOnly = true): Tensor {
  if (floatOnly && !isFloat(x.dtype)) fail(op, `needs a float tensor, got ${x}`);
  return x.graph.addNode(op, [x], [{ dtype: x.dtype, shape: x.shape }])[0]!;
}

// ---- elementwise -------------------------------------------------------------------------------------------

export const add = (a: TensorLike, b: TensorLike): Tensor => binary('Add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binary('Sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => binary('Mul', a, b);
export const div = (a: TensorLike, b: TensorLike): Tensor => binary('Div', a, b);
/** Elementwise max / min of two tensors (gradient goes to the selected operand; ties to the first). */
export const maximum = (a: TensorLike, b: TensorLike): Tensor => binary('Max', a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => binary('Min', a, b);

/** x ** exponent with a constant exponent. */
export function pow(x: Tensor, exponent: number): Tensor {
  if (!isFloat(x.dtype)) fail('Pow', `needs a float tensor, got ${x}`);
  return x.graph.addNode('Pow', [x, x.graph.constant(exponent, x.dtype)], [{ dtype: x.dtype, shape: x.shape }])[0]!;
}

export const neg = (x: Tensor): Tensor => unary('Neg', x, false);
export const exp = (x: Tensor): Tensor => unary('Exp', x);
export const log = (x: Tensor): Tensor => unary('Log', x);
export const sqrt = (x: Tensor): Tensor => unary('Sqrt', x);
export const tanh = (x: Tensor): Tensor => unary('Tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('Sigmoid', x);
export const relu = (x: Tensor): Tensor => unary('Relu', x);
export const abs = (x: Tensor): Tensor => unary('Abs', x, false);
/** Gauss error function (ORT CPU has a float32 kernel only). */
export const erf = (x: Tensor): Tensor => unary('Erf', x);
export const sin = (x: Tensor): Tensor => unary('Sin', x);
export const cos = (x: Tensor): Tensor => unary('Cos', x);
export const sign = (x: Tensor): Tensor => unary('Sign', x, false);

export const equal = (a: TensorLike, b: TensorLike): Tensor => binary('Equal', a, b, 'bool');
export const less = (a: TensorLike, b: TensorLike): Tensor => binary('Less', a, b, 'bool');
export const greater = (a: TensorLike, b: TensorLike): Tensor => binary('Greater', a, b, 'bool');
export const lessEqual = (a: TensorLike, b: TensorLike): Tensor => binary('LessOrEqual', a, b, 'bool');
export const greaterEqual = (a: TensorLike, b: TensorLike): Tensor => binary('GreaterOrEqual', a, b, 'bool');

function logical(op: string, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'bool' || b.dtype !== 'bool') fail(op, `needs bool tensors, got ${a} and ${b}`);
  return binary(op, a, b, 'bool');
}
export const logicalAnd = (a: Tensor, b: Tensor): Tensor => logical('And', a, b);
export const logicalOr = (a: Tensor, b: Tensor): Tensor => logical('Or', a, b);
export function logicalNot(x: Tensor): Tensor {
  if (x.dtype !== 'bool') fail('Not', `needs a bool tensor, got ${x}`);
  return x.graph.addNode('Not', [x], [{ dtype: 'bool', shape: x.shape }])[0]!;
}

export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const g = cond.graph;
  if (cond.dtype !== 'bool') fail('Where', `condition must be bool, got ${cond}`);
  const dt = dtypeOf([a, b]);
  const ta = lift(g, a, dt);
  const tb = lift(g, b, dt);
  sameDtype('Where', ta, tb);
  const shape = broadcastShapes('Where', cond.shape, ta.shape, tb.shape);
  return g.addNode('Where', [cond, ta, tb], [{ dtype: dt, shape }])[0]!;
}

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  return x.graph.addNode('Cast', [x], [{ dtype, shape: x.shape }], { to: int(ONNX_DTYPE[dtype]) })[0]!;
}

/** Identity whose gradient is zero (autodiff does not pass through it). */
export function stopGradient(x: Tensor): Tensor {
  return x.graph.addNode('Identity', [x], [{ dtype: x.dtype, shape: x.shape }], { _stop: int(1) })[0]!;
}

// ---- linear algebra ----------------------------------------------------------------------------------------

/** ONNX MatMul: a [..., M, K] x b [..., K, N] -> [..., M, N], batch dims broadcast. Both ranks must be >= 2. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  sameDtype('MatMul', a, b);
  if (a.rank < 2 || b.rank < 2) fail('MatMul', `operands must have rank >= 2, got ${a} and ${b}`);
  const k1 = a.shape[a.rank - 1]!;
  const k2 = b.shape[b.rank - 2]!;
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    fail('MatMul', `inner dims differ: ${fmtShape(a.shape)} x ${fmtShape(b.shape)} (${k1} vs ${k2})`);
  }
  const batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...batch, a.shape[a.rank - 2]!, b.shape[b.rank - 1]!];
  return a.graph.addNode('MatMul', [a, b], [{ dtype: a.dtype, shape }])[0]!;
}

// ---- reductions --------------------------------------------------------------------------------------------

function reduce(op: string, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  if (axes.length === 0) fail(op, 'axes must not be empty');
  const ax = [...new Set(axes.map((a) => normAxis(op, a, x.rank)))].sort((p, q) => p - q);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!ax.includes(i)) shape.push(d);
    else if (keepDims) shape.push(1);
  });
  return x.graph.addNode(op, [x, i64(x.graph, ax)], [{ dtype: x.dtype, shape }], {
    keepdims: int(keepDims ? 1 : 0),
  })[0]!;
}

export const reduceSum = (x: Tensor, axes: number[], keepDims = true): Tensor => reduce('ReduceSum', x, axes, keepDims);
export const reduceMean = (x: Tensor, axes: number[], keepDims = true): Tensor =>
  reduce('ReduceMean', x, axes, keepDims);
export const reduceMax = (x: Tensor, axes: number[], keepDims = true): Tensor => reduce('ReduceMax', x, axes, keepDims);

/** Index of the max along `axis` (int64; not differentiable). */
export function argMax(x: Tensor, axis = -1, keepDims = false): Tensor {
  const a = normAxis('ArgMax', axis, x.rank);
  const shape = x.shape.flatMap((d, i) => (i !== a ? [d] : keepDims ? [1] : []));
  return x.graph.addNode('ArgMax', [x], [{ dtype: 'int64', shape }], {
    axis: int(a),
    keepdims: int(keepDims ? 1 : 0),
  })[0]!;
}

export function softmax(x: Tensor, axis = -1): Tensor {
  if (!isFloat(x.dtype)) fail('Softmax', `needs a float tensor, got ${x}`);
  const a = normAxis('Softmax', axis, x.rank);
  return x.graph.addNode('Softmax', [x], [{ dtype: x.dtype, shape: x.shape }], { axis: int(a) })[0]!;
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  if (!isFloat(x.dtype)) fail('LogSoftmax', `needs a float tensor, got ${x}`);
  const a = normAxis('LogSoftmax', axis, x.rank);
  return x.graph.addNode('LogSoftmax', [x], [{ dtype: x.dtype, shape: x.shape }], { axis: int(a) })[0]!;
}

// ---- shape ops ---------------------------------------------------------------------------------------------

/** int64 1-D tensor holding `dims` at run time; static dims are constants, symbolic ones read with Shape. */
export function shapeTensor(g: Graph, dims: readonly Dim[]): Tensor {
  if (dims.every((d) => typeof d === 'number')) return i64(g, dims as number[]);
  const parts: Tensor[] = [];
  let run: number[] = [];
  for (const d of dims) {
    if (typeof d === 'number') run.push(d);
    else {
      if (run.length) parts.push(i64(g, run));
      run = [];
      parts.push(g.dimTensor(d));
    }
  }
  if (run.length) parts.push(i64(g, run));
  if (parts.length === 1) return parts[0]!;
  return g.addNode('Concat', parts, [{ dtype: 'int64', shape: [dims.length] }], { axis: int(0) })[0]!;
}

/** The runtime shape of x (a constant when x is static). */
export function shapeOf(x: Tensor): Tensor {
  if (x.shape.every((d) => typeof d === 'number')) return i64(x.graph, x.shape as number[]);
  return x.graph.addNode('Shape', [x], [{ dtype: 'int64', shape: [x.rank] }])[0]!;
}

/** Reshape; -1 infers one dim, symbolic dims are read from the graph's tensors at run time. */
export function reshape(x: Tensor, shape: Dim[]): Tensor {
  const g = x.graph;
  const neg = shape.filter((d) => d === -1).length;
  if (neg > 1) fail('Reshape', `at most one -1 allowed in ${fmtShape(shape)}`);
  for (const d of shape) {
    if (typeof d === 'number' && (d < -1 || d === 0 || !Number.isInteger(d))) {
      fail('Reshape', `target dim ${d} in ${fmtShape(shape)} is invalid (use positive sizes, -1 or a symbol)`);
    }
  }
  const total = mulDims(x.shape);
  const known = mulDims(shape.filter((d) => d !== -1));
  const out: Dim[] = [...shape];
  if (neg === 1) {
    const inferred = divDims(total, known);
    if (inferred === undefined && typeof total === 'number' && typeof known === 'number') {
      fail('Reshape', `cannot reshape ${fmtShape(x.shape)} (${total} elements) to ${fmtShape(shape)}`);
    }
    out[shape.indexOf(-1)] = inferred ?? g.opaqueSymbol('r');
  } else {
    const ft = factorize(total);
    const fk = factorize(known);
    if (ft.syms.join('*') === fk.syms.join('*') && ft.coef !== fk.coef) {
      fail('Reshape', `cannot reshape ${fmtShape(x.shape)} (${total} elements) to ${fmtShape(shape)} (${known})`);
    }
  }
  if (out.length === x.rank && out.every((d, i) => d === x.shape[i])) return x;
  const spec: Dim[] = shape.map((d, i) => (typeof d === 'string' && x.shape[i] === d ? 0 : d));
  return g.addNode('Reshape', [x, shapeTensor(g, spec)], [{ dtype: x.dtype, shape: out }])[0]!;
}

export function transpose(x: Tensor, perm: number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    fail('Transpose', `perm [${perm}] is not a permutation of rank ${x.rank} (${x})`);
  }
  if (perm.every((p, i) => p === i)) return x;
  // Transpose of a transpose is one transpose (or none): the backward pass of x @ W^T would otherwise emit
  // W^T^T, which ORT constant-folds into a second copy of every frozen weight.
  const inner = x.producer;
  if (inner?.op === 'Transpose' && inner.attrs.perm?.kind === 'ints') {
    const p1 = inner.attrs.perm.v;
    return transpose(
      inner.inputs[0]!,
      perm.map((p) => p1[p]!),
    );
  }
  return x.graph.addNode('Transpose', [x], [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }], {
    perm: ints(perm),
  })[0]!;
}

export function unsqueeze(x: Tensor, axes: number[]): Tensor {
  const rank = x.rank + axes.length;
  const ax = axes.map((a) => normAxis('Unsqueeze', a, rank)).sort((p, q) => p - q);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]!);
  return x.graph.addNode('Unsqueeze', [x, i64(x.graph, ax)], [{ dtype: x.dtype, shape }])[0]!;
}

export function squeeze(x: Tensor, axes: number[]): Tensor {
  const ax = axes.map((a) => normAxis('Squeeze', a, x.rank)).sort((p, q) => p - q);
  for (const a of ax) {
    const d = x.shape[a]!;
    if (typeof d === 'number' && d !== 1) fail('Squeeze', `axis ${a} of ${x} has size ${d}, not 1`);
  }
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.addNode('Squeeze', [x, i64(x.graph, ax)], [{ dtype: x.dtype, shape }])[0]!;
}

export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) fail('Concat', 'needs at least one tensor');
  const first = xs[0]!;
  if (xs.length === 1) return first;
  const a = normAxis('Concat', axis, first.rank);
  for (const t of xs) {
    sameDtype('Concat', first, t);
    if (t.rank !== first.rank) fail('Concat', `rank mismatch: ${xs.map((u) => fmtShape(u.shape)).join(', ')}`);
    t.shape.forEach((d, i) => {
      const e = first.shape[i]!;
      if (i !== a && typeof d === 'number' && typeof e === 'number' && d !== e) {
        fail('Concat', `dim ${i} differs along non-concat axis: ${xs.map((u) => fmtShape(u.shape)).join(', ')}`);
      }
    });
  }
  const shape = first.shape.map((d, i) => {
    if (i === a) return addDims(xs.map((t) => t.shape[a]!));
    return typeof d === 'number' ? d : (xs.find((t) => typeof t.shape[i] === 'number')?.shape[i] ?? d);
  });
  return first.graph.addNode('Concat', xs, [{ dtype: first.dtype, shape }], { axis: int(a) })[0]!;
}

const BIG = 2 ** 62;

function sliceLen(d: number, start: number, end: number, step: number): number {
  if (step > 0) {
    const s = Math.min(Math.max(start < 0 ? start + d : start, 0), d);
    const e = Math.min(Math.max(end < 0 ? end + d : end, 0), d);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  const s = Math.min(Math.max(start < 0 ? start + d : start, -1), d - 1);
  const e = Math.min(Math.max(end < 0 ? end + d : end, -1), d - 1);
  return Math.max(0, Math.ceil((s - e) / -step));
}

/** ONNX Slice semantics (negative indices count from the end, ends are clamped). One node per sliced axis. */
export function slice(x: Tensor, starts: number[], ends: number[], axes?: number[], steps?: number[]): Tensor {
  const ax = axes ?? starts.map((_, i) => i);
  if (starts.length !== ends.length || ax.length !== starts.length || (steps && steps.length !== starts.length)) {
    fail('Slice', 'starts, ends, axes and steps must have the same length');
  }
  let y = x;
  ax.forEach((axis, i) => {
    const a = normAxis('Slice', axis, x.rank);
    const step = steps?.[i] ?? 1;
    if (step === 0) fail('Slice', 'step must not be 0');
    const st = starts[i]!;
    const en = ends[i]! >= 2147483647 ? BIG : Math.max(ends[i]!, -BIG);
    const d = y.shape[a]!;
    let nd: Dim;
    if (typeof d === 'number') nd = sliceLen(d, st, en, step);
    else if (st === 0 && en >= BIG && step === 1) nd = d;
    else if (step === 1 && st >= 0 && en >= 0 && en < BIG) nd = Math.max(0, en - st);
    else if (step === 1 && st < 0 && en >= BIG) nd = -st;
    else nd = y.graph.opaqueSymbol('s');
    const shape = y.shape.map((e, j) => (j === a ? nd : e));
    const g = y.graph;
    y = g.addNode(
      'Slice',
      [y, i64(g, [st]), i64(g, [en]), i64(g, [a]), i64(g, [step])],
      [{ dtype: y.dtype, shape }],
    )[0]!;
  });
  return y;
}

function checkIndices(op: string, idx: Tensor): void {
  if (idx.dtype !== 'int64' && idx.dtype !== 'int32') fail(op, `indices must be int64 or int32, got ${idx}`);
}

/** ONNX Gather: out = x.shape[:axis] + indices.shape + x.shape[axis+1:]. Indices must be non-negative. */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  checkIndices('Gather', indices);
  const a = normAxis('Gather', axis, x.rank);
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return x.graph.addNode('Gather', [x, indices], [{ dtype: x.dtype, shape }], { axis: int(a) })[0]!;
}

/** ONNX GatherElements: out has indices' shape. */
export function gatherElements(x: Tensor, indices: Tensor, axis: number): Tensor {
  checkIndices('GatherElements', indices);
  const a = normAxis('GatherElements', axis, x.rank);
  if (indices.rank !== x.rank) fail('GatherElements', `indices ${indices} must have the rank of ${x}`);
  return x.graph.addNode('GatherElements', [x, indices], [{ dtype: x.dtype, shape: indices.shape }], {
    axis: int(a),
  })[0]!;
}

/** Broadcast x to `shape` (numpy rules, like ONNX Expand). */
export function expand(x: Tensor, shape: Dim[]): Tensor {
  const out = broadcastShapes('Expand', x.shape, shape);
  if (out.length === x.rank && out.every((d, i) => d === x.shape[i])) return x;
  return x.graph.addNode('Expand', [x, shapeTensor(x.graph, shape)], [{ dtype: x.dtype, shape: out }])[0]!;
}

// ---- non-differentiable helpers (used by composites and autodiff) ------------------------------------------

/** A 1-D range [start, limit) with `delta`; scalars may be 0-D tensors. `length` names the result's dim. */
export function range(
  g: Graph,
  start: TensorLike,
  limit: TensorLike,
  delta: TensorLike = 1,
  dtype: DType = 'int64',
  length?: Dim,
): Tensor {
  const ts = [start, limit, delta].map((v) => lift(g, v, dtype));
  let len: Dim;
  if (length !== undefined) len = length;
  else if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number') {
    len = Math.max(0, Math.ceil((limit - start) / delta));
  } else len = g.opaqueSymbol('n');
  return g.addNode('Range', ts, [{ dtype, shape: [len] }])[0]!;
}

/** [0, 1, …, d-1] as int64 (or float) for a static or symbolic dim d. */
export function arange(g: Graph, d: Dim, dtype: DType = 'int64'): Tensor {
  if (typeof d === 'number') return range(g, 0, d, 1, dtype);
  const n = dtype === 'int64' ? dimScalar(g, d) : cast(dimScalar(g, d), dtype);
  return range(g, 0, n, 1, dtype, d);
}

/** 0-D int64 tensor with the runtime value of dim d. */
export function dimScalar(g: Graph, d: Dim): Tensor {
  if (typeof d === 'number') return g.constant(d, 'int64');
  return g.addNode('Squeeze', [g.dimTensor(d), i64(g, [0])], [{ dtype: 'int64', shape: [] }])[0]!;
}

/** Tensor of `shape` filled with `value`. */
export function full(g: Graph, shape: readonly Dim[], value: number, dtype: DType = 'float32'): Tensor {
  return g.addNode('ConstantOfShape', [shapeTensor(g, shape)], [{ dtype, shape }], {
    value: { kind: 'tensor', v: hostTensor(dtype, [1], [value]) },
  })[0]!;
}

/** zeros with x's (runtime) shape and dtype. */
export function zerosLike(x: Tensor): Tensor {
  return x.graph.addNode('ConstantOfShape', [shapeOf(x)], [{ dtype: x.dtype, shape: x.shape }], {
    value: { kind: 'tensor', v: hostTensor(x.dtype, [1], [0]) },
  })[0]!;
}

export function scatterND(data: Tensor, indices: Tensor, updates: Tensor, reduction: 'none' | 'add' = 'none'): Tensor {
  const attrs: Record<string, AttrValue> = reduction === 'none' ? {} : { reduction: { kind: 'string', v: reduction } };
  return data.graph.addNode(
    'ScatterND',
    [data, cast(indices, 'int64'), updates],
    [{ dtype: data.dtype, shape: data.shape }],
    attrs,
  )[0]!;
}

export function scatterElements(
  data: Tensor,
  indices: Tensor,
  updates: Tensor,
  axis: number,
  reduction: 'none' | 'add' = 'none',
): Tensor {
  const attrs: Record<string, AttrValue> = { axis: int(normAxis('ScatterElements', axis, data.rank)) };
  if (reduction !== 'none') attrs.reduction = { kind: 'string', v: reduction };
  return data.graph.addNode(
    'ScatterElements',
    [data, indices, updates],
    [{ dtype: data.dtype, shape: data.shape }],
    attrs,
  )[0]!;
}

/** Zero-pad (pads = [begin_0..begin_n, end_0..end_n], may be negative to crop). */
export function pad(x: Tensor, pads: number[], outShape: readonly Dim[]): Tensor {
  return x.graph.addNode('Pad', [x, i64(x.graph, pads)], [{ dtype: x.dtype, shape: outShape }], {
    mode: { kind: 'string', v: 'constant' },
  })[0]!;
}

/** Split x along axis into pieces whose sizes are given at run time by `sizes` (int64 1-D). */
export function splitBy(x: Tensor, axis: number, sizes: Tensor, outDims: readonly Dim[]): Tensor[] {
  const a = normAxis('Split', axis, x.rank);
  return x.graph.addNode(
    'Split',
    [x, sizes],
    outDims.map((d) => ({ dtype: x.dtype, shape: x.shape.map((e, i) => (i === a ? d : e)) })),
    { axis: int(a) },
  );
}
