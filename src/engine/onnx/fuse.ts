/**
 * Fused lowering for inference graphs: a composite region (see Graph.composite) is replaced by one fused node
 * when nothing outside the region reads its internal values (e.g. a backward pass that reuses them), so the swap
 * cannot change any output. Fused ops are tested for numerical equivalence in test/engine/fused.test.ts.
 */
import { type CompositeRegion, consumerMap, type Graph, type Node, regionIsSealed, Tensor } from '../graph/graph.ts';
import { type HostTensor, toNumbers } from '../graph/types.ts';
import type { EmitNode } from './emit.ts';

interface LowerCtx {
  graph: Graph;
  /** Register an extra initializer (cached per source tensor + tag) and return its tensor. */
  init(key: object, tag: string, make: () => HostTensor): Tensor;
}

type Lowering = (r: CompositeRegion, ctx: LowerCtx) => EmitNode | undefined;

function constantValue(graph: Graph, t: Tensor): HostTensor | undefined {
  return graph.constants.get(t.id) ?? graph.weights.find((w) => w.tensor === t && !w.trainable)?.value;
}

function intsOf(graph: Graph, t: Tensor | null | undefined): number[] | undefined {
  const v = t ? graph.constants.get(t.id) : undefined;
  return v ? toNumbers(v) : undefined;
}

/** cos/sin of the rope composite as Unsqueeze(Gather(table [maxSeq, D], positions [B,T]), [1]). */
function ropeTable(graph: Graph, t: Tensor): { table: HostTensor; positions: Tensor } | undefined {
  const u = t.producer;
  if (u?.op !== 'Unsqueeze' || intsOf(graph, u.inputs[1])?.join() !== '1') return;
  const gth = u.inputs[0]!.producer;
  if (gth?.op !== 'Gather' || (gth.attrs.axis?.kind === 'int' && gth.attrs.axis.v !== 0)) return;
  const table = constantValue(graph, gth.inputs[0]!);
  const positions = gth.inputs[1]!;
  if (table?.dtype !== 'float32' || table.dims.length !== 2 || positions.dtype !== 'int64') return;
  if (positions.rank !== 2) return;
  return { table, positions };
}

/** First half of each row when every row is [h, h] (HF rotate_half tables); undefined otherwise. */
function halfTable(table: HostTensor): HostTensor | undefined {
  const [rows, d] = table.dims as [number, number];
  const h = d / 2;
  const src = table.data as Float32Array;
  const out = new Float32Array(rows * h);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < h; j++) {
      const a = src[r * d + j]!;
      if (a !== src[r * d + h + j]) return;
      out[r * h + j] = a;
    }
  }
  return { dtype: 'float32', dims: [rows, h], data: out };
}

const lowerings: Record<string, Lowering> = {
  // ORT registers SimplifiedLayerNormalization (RMSNorm) in the ai.onnx domain, computing in fp32.
  rmsNorm: (r) => {
    const [x, w] = r.inputs as [CompositeRegion['inputs'][0], CompositeRegion['inputs'][0]];
    if (!x || !w || w.rank !== 1 || (x.dtype !== 'float32' && x.dtype !== 'float16') || w.dtype !== x.dtype) return;
    return {
      op: 'SimplifiedLayerNormalization',
      domain: '',
      inputs: [x, w],
      outputs: [r.output!],
      attrs: { axis: { kind: 'int', v: -1 }, epsilon: { kind: 'float', v: Number(r.attrs.eps) } },
    };
  },
  // rope(x [B,H,T,D], cos, sin) with cos/sin gathered by position from [maxSeq, D] tables -> com.microsoft
  // RotaryEmbedding (non-interleaved = rotate_half), taking position_ids and the half tables directly.
  rope: (r, ctx) => {
    const [x, cos, sin] = r.inputs;
    if (!x || !cos || !sin || x.rank !== 4 || x.dtype !== 'float32' || typeof x.shape[3] !== 'number') return;
    const c = ropeTable(ctx.graph, cos);
    const s = ropeTable(ctx.graph, sin);
    if (!c || !s || c.positions !== s.positions || c.table.dims[1] !== x.shape[3]) return;
    const ch = halfTable(c.table);
    const sh = halfTable(s.table);
    if (!ch || !sh) return;
    return {
      op: 'RotaryEmbedding',
      domain: 'com.microsoft',
      inputs: [x, c.positions, ctx.init(c.table, 'half', () => ch), ctx.init(s.table, 'half', () => sh)],
      outputs: [r.output!],
      attrs: { interleaved: { kind: 'int', v: 0 } },
    };
  },
  layerNorm: (r) => {
    const [x, w, b] = r.inputs;
    if (!x || !w || !b || w.rank !== 1 || b.rank !== 1 || x.dtype !== 'float32') return;
    return {
      op: 'LayerNormalization',
      domain: '',
      inputs: [x, w, b],
      outputs: [r.output!],
      attrs: { axis: { kind: 'int', v: -1 }, epsilon: { kind: 'float', v: Number(r.attrs.eps) } },
    };
  },
};

/**
 * The Add node producing an RMSNorm's input when it can be folded into SkipSimplifiedLayerNormalization: same-shape
 * rank-3 float32 operands (the CPU kernel's contract) and no reader of the sum between the Add and the norm.
 */
function skipAddOf(graph: Graph, r: CompositeRegion, consumers: Map<number, Set<number>>): Node | undefined {
  const x = r.inputs[0]!;
  const add = x.producer;
  if (add?.op !== 'Add' || add.composite !== undefined || x.rank !== 3 || x.dtype !== 'float32') return;
  const [a, b] = add.inputs;
  if (!a || !b || a.rank !== 3 || b.rank !== 3) return;
  if (a.shape.some((d, i) => d !== x.shape[i]) || b.shape.some((d, i) => d !== x.shape[i])) return;
  for (const c of consumers.get(x.id) ?? []) {
    const inRegion = c >= r.firstNode && c <= r.lastNode;
    if (!inRegion && c < r.lastNode) return;
  }
  if (graph.outputs.some((o) => o.tensor === x)) return;
  return add;
}

/** The graph's nodes with every fusable composite region replaced by its fused node. */
export function fusedNodes(graph: Graph): { nodes: EmitNode[]; inits: Map<Tensor, HostTensor> } {
  const consumers = consumerMap(graph);
  const inits = new Map<Tensor, HostTensor>();
  const cache = new Map<object, Map<string, Tensor>>();
  let fake = -1_000_000;
  const ctx: LowerCtx = {
    graph,
    init(key, tag, make) {
      let byTag = cache.get(key);
      if (!byTag) cache.set(key, (byTag = new Map()));
      let t = byTag.get(tag);
      if (!t) {
        const h = make();
        t = new Tensor(fake--, h.dtype, h.dims, graph, null);
        inits.set(t, h);
        byTag.set(tag, t);
      }
      return t;
    },
  };
  const replace = new Map<number, EmitNode>();
  const skip = new Set<number>();
  graph.composites.forEach((r, idx) => {
    const lower = lowerings[r.kind];
    if (!lower || !regionIsSealed(graph, idx, consumers, true)) return;
    let fused = lower(r, ctx);
    if (!fused) return;
    for (let i = r.firstNode; i < r.lastNode; i++) skip.add(i);
    const add = r.kind === 'rmsNorm' ? skipAddOf(graph, r, consumers) : undefined;
    if (add && !skip.has(add.index) && !replace.has(add.index)) {
      // residual = a + b feeding an RMSNorm: one SkipSimplifiedLayerNormalization computes both.
      fused = {
        op: 'SkipSimplifiedLayerNormalization',
        domain: 'com.microsoft',
        inputs: [add.inputs[0]!, add.inputs[1]!, r.inputs[1]!],
        outputs: [r.output!, null, null, add.outputs[0]!],
        attrs: { epsilon: { kind: 'float', v: Number(r.attrs.eps) } },
      };
      skip.add(add.index);
    }
    replace.set(r.lastNode, fused);
  });
  const out: EmitNode[] = [];
  for (const n of graph.nodes) {
    if (skip.has(n.index)) continue;
    out.push(replace.get(n.index) ?? n);
  }
  return { nodes: out, inits };
}
