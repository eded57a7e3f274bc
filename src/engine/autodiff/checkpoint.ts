/**
 * Activation checkpointing for grad(): a segment recorded with Graph.checkpoint (one transformer layer) is not
 * differentiated in place. Its forward nodes run once and their activations die right after; when the backward
 * reaches the segment, the nodes that depend on the segment's input (or on a differentiated tensor) are cloned
 * and the clone is differentiated instead. The clone reads the input through Where(true, input, dep(gradient)),
 * which both keeps ONNX Runtime from running the recomputation early (it needs the incoming gradient) and from
 * merging it with the forward (common-subexpression elimination). Composite regions inside the segment are cloned
 * with their custom VJPs, whose nodes are re-pointed at the clone's tensors, so the gradients are the same ops on
 * the same values as without checkpointing.
 */
import type { CompositeRegion, Graph, Node, Segment, Tensor } from '../graph/graph.ts';
import { i64, reduceSum, where } from '../graph/ops.ts';
import { hostTensor, isFloat } from '../graph/types.ts';

/**
 * Indices of the segment's nodes to recompute, or undefined when the segment cannot be checkpointed (a value
 * computed inside is read outside it, other than its output).
 */
export function segmentPlan(
  g: Graph,
  seg: Segment,
  reach: Set<number>,
  consumers: Map<number, Set<number>>,
): number[] | undefined {
  if (seg.output.producer?.index !== seg.lastNode) return undefined;
  const dep = new Set<number>([seg.input.id]);
  const clone: number[] = [];
  const graphOutputs = new Set(g.outputs.map((o) => o.tensor.id));
  for (let i = seg.firstNode; i <= seg.lastNode; i++) {
    const n = g.nodes[i]!;
    if (!n.inputs.some((t) => t && (dep.has(t.id) || reach.has(t.id)))) continue;
    clone.push(i);
    for (const o of n.outputs) {
      dep.add(o.id);
      if (o === seg.output) continue;
      if (graphOutputs.has(o.id)) return undefined;
      for (const c of consumers.get(o.id) ?? []) if (c < seg.firstNode || c > seg.lastNode) return undefined;
    }
  }
  return clone.includes(seg.lastNode) ? clone : undefined;
}

/** Appends the recomputation; returns the clone's node range, its input and the old-to-new tensor map. */
export function recomputeSegment(
  g: Graph,
  seg: Segment,
  clone: number[],
  gOut: Tensor,
  reach: Set<number>,
): { lo: number; hi: number; input: Tensor; map: Map<number, Tensor>; regions: number[] } {
  const map = new Map<number, Tensor>();
  const remap = (t: Tensor): Tensor => map.get(t.id) ?? t;
  const corner = g.addNode(
    'Slice',
    [gOut, i64(g, new Array(gOut.rank).fill(0)), i64(g, new Array(gOut.rank).fill(1)), i64(g, [...gOut.shape.keys()])],
    [{ dtype: gOut.dtype, shape: gOut.shape.map(() => 1) }],
  )[0]!;
  const dep = gOut.rank > 0 ? reduceSum(corner, [...gOut.shape.keys()], false) : gOut;
  const input = where(g.constant(hostTensor('bool', [], [1])), seg.input, dep);
  map.set(seg.input.id, input);
  if (reach.has(seg.input.id)) reach.add(input.id);

  const lo = g.nodes.length;
  const regionMap = new Map<number, { r: CompositeRegion; idx: number }>();
  const regions: number[] = [];
  for (const i of clone) {
    const n = g.nodes[i]!;
    const outs = g.addNode(
      n.op,
      n.inputs.map((t) => (t ? remap(t) : null)),
      n.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })),
      n.attrs,
      n.domain,
    );
    n.outputs.forEach((o, k) => {
      map.set(o.id, outs[k]!);
    });
    const added = g.nodes[g.nodes.length - 1]!;
    if (n.inputs.some((t) => t && reach.has(remap(t).id))) {
      for (const o of outs) if (isFloat(o.dtype)) reach.add(o.id);
    }
    if (n.composite === undefined) continue;
    const old = g.composites[n.composite]!;
    let entry = regionMap.get(n.composite);
    if (!entry) {
      const r: CompositeRegion = {
        kind: old.kind,
        inputs: old.inputs.map(remap),
        attrs: old.attrs,
        firstNode: added.index,
        lastNode: -1,
      };
      if (old.vjp) r.vjp = wrapVjp(g, old, map);
      entry = { r, idx: g.composites.length };
      regionMap.set(n.composite, entry);
      regions.push(entry.idx);
      g.composites.push(r);
    }
    entry.r.lastNode = added.index;
    added.composite = entry.idx;
  }
  for (const [oldIdx, { r }] of regionMap) {
    const out = g.composites[oldIdx]!.output;
    if (out) r.output = remap(out);
  }
  return { lo, hi: g.nodes.length - 1, input, map, regions };
}

/** The original region's VJP, its new nodes re-pointed from the forward's tensors to the clone's. */
function wrapVjp(g: Graph, old: CompositeRegion, map: Map<number, Tensor>): NonNullable<CompositeRegion['vjp']> {
  return (gr, need) => {
    const start = g.nodes.length;
    const res = old.vjp!(gr, need);
    for (let i = start; i < g.nodes.length; i++) {
      const n = g.nodes[i]! as Node & { inputs: (Tensor | null)[] };
      n.inputs.forEach((t, k) => {
        if (t && map.has(t.id)) n.inputs[k] = map.get(t.id)!;
      });
    }
    return res?.map((t) => (t ? (map.get(t.id) ?? t) : null));
  };
}
