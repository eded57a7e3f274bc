/**
 * The graph IR: typed tensors produced by ONNX-like nodes. Primitive ops (graph/ops.ts) append nodes; autodiff
 * appends more nodes to the same graph; onnx/emit.ts walks it. Node `op` is the ONNX op type, so emission is 1:1.
 */
import { LoomError } from '../../core/errors.ts';
import { type AttrValue, type Dim, type DType, type HostTensor, hostTensor } from './types.ts';

export class Tensor {
  constructor(
    readonly id: number,
    readonly dtype: DType,
    readonly shape: readonly Dim[],
    readonly graph: Graph,
    /** The node that computes it; null for inputs, weights and constants. */
    readonly producer: Node | null,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  toString(): string {
    return `${this.dtype}[${this.shape.join(',')}]`;
  }
}

export interface Node {
  readonly index: number;
  readonly op: string;
  /** '' = ai.onnx, or 'com.microsoft'. */
  readonly domain: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  /** Index into graph.composites when the node was built inside a composite (rmsNorm, …). */
  composite?: number;
}

/**
 * Custom gradient of a composite: given the output's gradient and which inputs need one, return input gradients,
 * or undefined to fall back to differentiating the primitives inside the region.
 */
export type CompositeVjp = (g: Tensor, need: boolean[]) => (Tensor | null)[] | undefined;

/** A region of nodes that implements one composite op; the fused lowering may replace it with one node. */
export interface CompositeRegion {
  readonly kind: string;
  readonly inputs: Tensor[];
  readonly attrs: Record<string, number | string>;
  output?: Tensor;
  /** Optional custom VJP, used by grad() when nothing outside the region reads its internals. */
  vjp?: CompositeVjp;
  readonly firstNode: number;
  lastNode: number;
}

/** A run of nodes recorded by Graph.checkpoint: recomputed from `input` in the backward pass (autodiff/checkpoint.ts). */
export interface Segment {
  readonly firstNode: number;
  readonly lastNode: number;
  readonly input: Tensor;
  readonly output: Tensor;
}

export interface WeightEntry {
  name: string;
  tensor: Tensor;
  value: HostTensor;
  trainable: boolean;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.:/\-[\]]*$/;

export class Graph {
  readonly tensors: Tensor[] = [];
  readonly nodes: Node[] = [];
  readonly inputs: { name: string; tensor: Tensor }[] = [];
  readonly weights: WeightEntry[] = [];
  readonly constants = new Map<number, HostTensor>();
  readonly outputs: { name: string; tensor: Tensor }[] = [];
  readonly composites: CompositeRegion[] = [];
  readonly checkpoints: Segment[] = [];
  /** Symbolic dim -> the first tensor/axis that carries it, so its runtime value can be read with Shape. */
  readonly symbols = new Map<string, { tensor: Tensor; axis: number }>();
  private readonly names = new Set<string>();
  private readonly scalarCache = new Map<string, Tensor>();
  private readonly shapeDimCache = new Map<string, Tensor>();
  private openComposite: number | undefined;
  private opaqueCount = 0;

  constructor(readonly name = 'loom') {}

  /** Look up a weight or input by name (undefined if none). */
  byName(name: string): Tensor | undefined {
    return this.inputs.find((i) => i.name === name)?.tensor ?? this.weights.find((w) => w.name === name)?.tensor;
  }

  /** Name used in the emitted ONNX graph for an input/weight tensor, if it has one. */
  nameOf(t: Tensor): string | undefined {
    return this.inputs.find((i) => i.tensor === t)?.name ?? this.weights.find((w) => w.tensor === t)?.name;
  }

  input(name: string, dtype: DType, shape: Dim[]): Tensor {
    this.claimName(name, 'input');
    for (const d of shape) checkDim(d, `input ${name}`);
    const t = this.newTensor(dtype, shape, null);
    this.inputs.push({ name, tensor: t });
    return t;
  }

  weight(name: string, value: HostTensor, opts: { trainable?: boolean } = {}): Tensor {
    this.claimName(name, 'weight');
    const n = value.dims.reduce((a, b) => a * b, 1);
    if (value.data.length !== n) {
      throw new LoomError('GRAPH', `weight ${name}: ${value.data.length} values for dims [${value.dims}]`);
    }
    const t = this.newTensor(value.dtype, value.dims, null);
    this.weights.push({ name, tensor: t, value, trainable: opts.trainable === true });
    return t;
  }

  /** Trainable weights in declaration order (their initial values are kept here). */
  trainables(): WeightEntry[] {
    return this.weights.filter((w) => w.trainable);
  }

  /** Initial values of the trainable weights, keyed by input name (feed these on the first run). */
  trainableFeeds(): Record<string, HostTensor> {
    return Object.fromEntries(this.trainables().map((w) => [w.name, w.value]));
  }

  constant(value: HostTensor | number, dtype: DType = 'float32'): Tensor {
    if (typeof value === 'number') {
      const key = `${dtype}:${Object.is(value, -0) ? '-0' : value}`;
      const hit = this.scalarCache.get(key);
      if (hit) return hit;
      const t = this.newTensor(dtype, [], null);
      this.constants.set(t.id, hostTensor(dtype, [], [value]));
      this.scalarCache.set(key, t);
      return t;
    }
    const t = this.newTensor(value.dtype, value.dims, null);
    this.constants.set(t.id, value);
    return t;
  }

  output(name: string, t: Tensor): void {
    if (t.graph !== this) throw new LoomError('GRAPH', `output ${name}: tensor belongs to another graph`);
    if (this.outputs.some((o) => o.name === name)) throw new LoomError('GRAPH', `output ${name} declared twice`);
    if (!NAME_RE.test(name)) throw new LoomError('GRAPH', `output name ${JSON.stringify(name)} is not a valid name`);
    this.outputs.push({ name, tensor: t });
  }

  /** Append a node; used by ops. Output specs give dtype and shape of each output. */
  addNode(
    op: string,
    inputs: (Tensor | null)[],
    outs: { dtype: DType; shape: readonly Dim[] }[],
    attrs: Record<string, AttrValue> = {},
    domain = '',
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new LoomError('GRAPH', `${op}: input tensor belongs to another graph`);
    }
    const outputs: Tensor[] = [];
    const node: Node = { index: this.nodes.length, op, domain, inputs, outputs, attrs };
    if (this.openComposite !== undefined) node.composite = this.openComposite;
    for (const o of outs) outputs.push(this.newTensor(o.dtype, o.shape, node));
    this.nodes.push(node);
    return outputs;
  }

  /** Run `fn` as a composite region (kind + attrs recorded for fused lowering). Nested composites merge outward. */
  composite(
    kind: string,
    inputs: Tensor[],
    attrs: Record<string, number | string>,
    fn: () => Tensor | { output: Tensor; vjp: CompositeVjp },
  ): Tensor {
    const unwrap = (r: Tensor | { output: Tensor; vjp: CompositeVjp }) => (r instanceof Tensor ? r : r.output);
    if (this.openComposite !== undefined) return unwrap(fn());
    const idx = this.composites.length;
    const region: CompositeRegion = { kind, inputs, attrs, firstNode: this.nodes.length, lastNode: -1 };
    this.composites.push(region);
    this.openComposite = idx;
    try {
      const res = fn();
      const out = unwrap(res);
      if (!(res instanceof Tensor)) region.vjp = res.vjp;
      region.output = out;
      region.lastNode = this.nodes.length - 1;
      return out;
    } finally {
      this.openComposite = undefined;
    }
  }

  /**
   * Build `fn(input)` as a checkpointed segment: grad() recomputes it from `input` in the backward pass instead of
   * keeping its activations (activation checkpointing; one transformer layer per segment).
   */
  checkpoint(input: Tensor, fn: (x: Tensor) => Tensor): Tensor {
    const firstNode = this.nodes.length;
    const output = fn(input);
    if (this.openComposite === undefined && output.producer && this.nodes.length > firstNode) {
      this.checkpoints.push({ firstNode, lastNode: this.nodes.length - 1, input, output });
    }
    return output;
  }

  /** A fresh symbol name for a dim that cannot be written as an expression of known symbols. */
  opaqueSymbol(hint: string): string {
    return `~${hint}${this.opaqueCount++}`;
  }

  /** Cached int64 [1] tensor holding the runtime value of a symbolic dim (or product of dims). */
  dimTensor(d: Dim): Tensor {
    if (typeof d === 'number') return this.constant(hostTensor('int64', [1], [d]));
    const hit = this.shapeDimCache.get(d);
    if (hit) return hit;
    // Cached dim tensors are shared across the graph, so they never belong to a composite region.
    const open = this.openComposite;
    this.openComposite = undefined;
    try {
      return this.computeDim(d);
    } finally {
      this.openComposite = open;
    }
  }

  private computeDim(d: string): Tensor {
    let out: Tensor;
    const src = this.symbols.get(d);
    if (src) {
      [out] = this.addNode('Shape', [src.tensor], [{ dtype: 'int64', shape: [1] }], {
        start: { kind: 'int', v: src.axis },
        end: { kind: 'int', v: src.axis + 1 },
      }) as [Tensor];
    } else {
      const f = factorize(d);
      if (f.syms.length === 1 && f.syms[0] === d) {
        throw new LoomError('GRAPH', `symbolic dim '${d}' is not carried by any tensor of this graph`, {
          hint: 'use a symbol that appears in an input shape, or a product of such symbols like "batch*seq"',
        });
      }
      out = this.constant(hostTensor('int64', [1], [f.coef]));
      for (const s of f.syms) {
        out = this.addNode('Mul', [out, this.dimTensor(s)], [{ dtype: 'int64', shape: [1] }])[0]!;
      }
    }
    this.shapeDimCache.set(d, out);
    return out;
  }

  private newTensor(dtype: DType, shape: readonly Dim[], producer: Node | null): Tensor {
    const t = new Tensor(this.tensors.length, dtype, Object.freeze([...shape]), this, producer);
    this.tensors.push(t);
    shape.forEach((d, axis) => {
      if (typeof d === 'string' && !this.symbols.has(d)) this.symbols.set(d, { tensor: t, axis });
    });
    return t;
  }

  private claimName(name: string, what: string): void {
    if (!NAME_RE.test(name)) throw new LoomError('GRAPH', `${what} name ${JSON.stringify(name)} is not a valid name`);
    if (this.names.has(name)) throw new LoomError('GRAPH', `${what} name ${name} is already used in this graph`);
    this.names.add(name);
  }
}

function checkDim(d: Dim, where: string): void {
  if (typeof d === 'number' && (!Number.isInteger(d) || d < 0)) {
    throw new LoomError('GRAPH', `${where}: dim ${d} must be a non-negative integer or a symbol name`);
  }
  if (typeof d === 'string' && d.length === 0) throw new LoomError('GRAPH', `${where}: empty symbol name`);
}

/** tensor id -> indices of the nodes that read it. */
export function consumerMap(graph: Graph): Map<number, Set<number>> {
  const consumers = new Map<number, Set<number>>();
  for (const n of graph.nodes) {
    for (const t of n.inputs) {
      if (!t) continue;
      let s = consumers.get(t.id);
      if (!s) consumers.set(t.id, (s = new Set()));
      s.add(n.index);
    }
  }
  return consumers;
}

/**
 * True when a composite region is self-contained: its nodes are contiguous, its output is its last node's, and no
 * node outside it (nor, with `outputsToo`, any graph output) reads a value computed inside it.
 */
export function regionIsSealed(
  graph: Graph,
  idx: number,
  consumers: Map<number, Set<number>>,
  outputsToo: boolean,
): boolean {
  const r = graph.composites[idx]!;
  if (!r.output || r.lastNode < r.firstNode || r.output.producer?.index !== r.lastNode) return false;
  const inside = (i: number) => i >= r.firstNode && i <= r.lastNode && graph.nodes[i]!.composite === idx;
  const outputs = outputsToo ? new Set(graph.outputs.map((o) => o.tensor.id)) : new Set<number>();
  for (let i = r.firstNode; i <= r.lastNode; i++) {
    if (!inside(i)) return false;
    for (const o of graph.nodes[i]!.outputs) {
      if (o === r.output) continue;
      if (outputs.has(o.id)) return false;
      for (const c of consumers.get(o.id) ?? []) if (!inside(c)) return false;
    }
  }
  return true;
}

/** A dim as coef * product(symbols); sums like '(past+seq)' are atomic symbols. */
export interface Factors {
  coef: number;
  syms: string[];
}

export function factorize(d: Dim): Factors {
  if (typeof d === 'number') return { coef: d, syms: [] };
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of d) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === '*' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  let coef = 1;
  const syms: string[] = [];
  for (const p of parts) {
    if (/^\d+$/.test(p)) coef *= Number(p);
    else syms.push(p);
  }
  return { coef, syms: syms.sort() };
}

function unfactorize(f: Factors): Dim {
  if (f.syms.length === 0) return f.coef;
  const s = f.syms.slice().sort().join('*');
  return f.coef === 1 ? s : `${f.coef}*${s}`;
}

export function mulDims(dims: readonly Dim[]): Dim {
  const f: Factors = { coef: 1, syms: [] };
  for (const d of dims) {
    const g = factorize(d);
    f.coef *= g.coef;
    f.syms.push(...g.syms);
  }
  return unfactorize(f);
}

/** a / b when b's factors divide a's; undefined otherwise. */
export function divDims(a: Dim, b: Dim): Dim | undefined {
  const fa = factorize(a);
  const fb = factorize(b);
  if (fb.coef === 0 || fa.coef % fb.coef !== 0) return undefined;
  const syms = fa.syms.slice();
  for (const s of fb.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  return unfactorize({ coef: fa.coef / fb.coef, syms });
}

export function addDims(dims: readonly Dim[]): Dim {
  let stat = 0;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') stat += d;
    else syms.push(d);
  }
  if (syms.length === 0) return stat;
  if (stat !== 0) syms.push(String(stat));
  return syms.length === 1 ? syms[0]! : `(${syms.join('+')})`;
}

export const fmtShape = (s: readonly Dim[]): string => `[${s.join(',')}]`;
