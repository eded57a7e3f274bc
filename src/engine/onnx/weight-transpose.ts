/**
 * MatMuls against a transposed frozen weight read the weight in place. Models keep HF's [out, in] layout and
 * compute x · Wᵀ as MatMul(x, Transpose(W)); the backward pass adds MatMul(g, Transpose(Transpose(W))). ORT
 * constant-folds every Transpose of an initializer at load time, so each frozen matrix used to exist twice (W and
 * Wᵀ, and for a tied embedding, the [vocab, hidden] table twice), and the fold itself costs load time. Here a
 * chain of 2-D transposes that composes to the identity is dropped, and one that composes to a swap becomes
 * com.microsoft.FusedMatMul with transB=1, which ORT's CPU MatMul kernel pre-packs straight from [N, K].
 * Equivalence with the primitive graph is tested in test/engine/weight-transpose.test.ts.
 */
import type { Graph, Tensor } from '../graph/graph.ts';
import type { EmitNode } from './emit.ts';

/** The frozen 2-D initializer behind `t` through Transpose nodes, and whether the chain swaps its axes. */
function frozenThroughTransposes(graph: Graph, t: Tensor): { weight: Tensor; swapped: boolean } | undefined {
  let swapped = false;
  let cur = t;
  for (let hops = 0; hops < 4; hops++) {
    const p = cur.producer;
    if (p?.op !== 'Transpose' || p.domain) break;
    const perm = p.attrs.perm;
    if (perm?.kind !== 'ints' || perm.v.length !== 2 || perm.v[0] !== 1 || perm.v[1] !== 0) return;
    swapped = !swapped;
    cur = p.inputs[0]!;
  }
  if (cur === t || cur.rank !== 2) return;
  const frozen = graph.weights.some((w) => w.tensor === cur && !w.trainable) || graph.constants.has(cur.id);
  return frozen ? { weight: cur, swapped } : undefined;
}

export function foldWeightTransposes(graph: Graph, nodes: EmitNode[]): EmitNode[] {
  return nodes.map((node): EmitNode => {
    if (node.op !== 'MatMul' || node.domain) return node;
    const [a, b] = node.inputs;
    // float32 only: ORT's CPU FusedMatMul has no float16 kernel.
    if (!a || !b || a.rank < 2 || a.dtype !== 'float32') return node;
    const found = frozenThroughTransposes(graph, b);
    if (!found) return node;
    if (!found.swapped) return { ...node, inputs: [a, found.weight] };
    return {
      op: 'FusedMatMul',
      domain: 'com.microsoft',
      inputs: [a, found.weight],
      outputs: node.outputs,
      attrs: { transB: { kind: 'int', v: 1 }, alpha: { kind: 'float', v: 1 } },
    };
  });
}
