/**
 * The Lineage page's DAG drawing, shared by the server tests and the browser bundle (no Node imports): a layered
 * layout (Sugiyama-style, small enough to own rather than pull in dagre or elkjs for graphs of tens of runs) and the
 * ancestor / descendant trace a click or Enter on a node highlights.
 *
 * Layers: longest path from a source, so every edge points to a later column (data → train → eval/export → serve).
 * Edges that skip columns get a virtual point per column they cross, so the ordering step sees them and the
 * drawing routes them between boxes instead of through them. Order within a column: a few sweeps of the
 * barycentre heuristic (each node moved to the mean position of its neighbours in the column before, then after),
 * which untangles the trees and near-trees that lineage graphs are.
 */
export interface DagEdge {
  from: string;
  to: string;
}

export interface DagLayout {
  /** Column index of each node. */
  layer: Record<string, number>;
  /** Node ids per column, top to bottom. */
  columns: string[][];
  /** Top-left corner of each node's box. */
  pos: Record<string, { x: number; y: number }>;
  /** Per edge (same order as given): the polyline from the source box's right side to the target's left side. */
  paths: { x: number; y: number }[][];
  width: number;
  height: number;
}

export interface DagSize {
  nodeWidth: number;
  nodeHeight: number;
  columnGap: number;
  rowGap: number;
}

const SIZE: DagSize = { nodeWidth: 210, nodeHeight: 52, columnGap: 70, rowGap: 18 };

/** Longest-path layering (Kahn's order); nodes on a cycle, which the registry should never hold, go last. */
function layers(nodes: string[], edges: DagEdge[]): Record<string, number> {
  const indeg = new Map(nodes.map((n) => [n, 0]));
  const out = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of edges) {
    if (!indeg.has(e.from) || !indeg.has(e.to)) continue;
    indeg.set(e.to, indeg.get(e.to)! + 1);
    out.get(e.from)!.push(e.to);
  }
  const layer: Record<string, number> = {};
  const queue = nodes.filter((n) => indeg.get(n) === 0);
  for (const n of queue) layer[n] = 0;
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i]!;
    for (const m of out.get(n)!) {
      layer[m] = Math.max(layer[m] ?? 0, layer[n]! + 1);
      indeg.set(m, indeg.get(m)! - 1);
      if (indeg.get(m) === 0) queue.push(m);
    }
  }
  const deepest = Math.max(0, ...Object.values(layer));
  for (const n of nodes) if (layer[n] === undefined) layer[n] = deepest + 1;
  return layer;
}

export function layoutDag(nodes: string[], edges: DagEdge[], size: DagSize = SIZE): DagLayout {
  const layer = layers(nodes, edges);
  const known = new Set(nodes);
  const drawn = edges.filter((e) => known.has(e.from) && known.has(e.to) && layer[e.to]! > layer[e.from]!);
  // Virtual points: an edge spanning k columns becomes a chain through k-1 of them.
  const chains = drawn.map((e, i) => {
    const chain = [e.from];
    for (let l = layer[e.from]! + 1; l < layer[e.to]!; l++) chain.push(`\u0000${i}:${l}`);
    chain.push(e.to);
    return chain;
  });
  const allLayer = new Map<string, number>(nodes.map((n) => [n, layer[n]!]));
  const nbUp = new Map<string, string[]>();
  const nbDown = new Map<string, string[]>();
  const link = (a: string, b: string) => {
    nbDown.set(a, [...(nbDown.get(a) ?? []), b]);
    nbUp.set(b, [...(nbUp.get(b) ?? []), a]);
  };
  for (const c of chains) {
    for (let k = 1; k < c.length - 1; k++) allLayer.set(c[k]!, allLayer.get(c[0]!)! + k);
    for (let k = 0; k + 1 < c.length; k++) link(c[k]!, c[k + 1]!);
  }
  const depth = Math.max(-1, ...allLayer.values()) + 1;
  const cols: string[][] = Array.from({ length: depth }, () => []);
  // Start from the given order (oldest first), so equal barycentres keep creation order.
  for (const [n, l] of allLayer) cols[l]!.push(n);
  const index = () => new Map(cols.flatMap((c) => c.map((n, i) => [n, i] as [string, number])));
  const sweep = (from: number, to: number, step: number, nb: Map<string, string[]>) => {
    for (let l = from; l !== to; l += step) {
      const at = index();
      const bary = (n: string) => {
        const ns = nb.get(n) ?? [];
        return ns.length ? ns.reduce((s, m) => s + at.get(m)!, 0) / ns.length : at.get(n)!;
      };
      const keyed = cols[l]!.map((n, i) => ({ n, b: bary(n), i }));
      keyed.sort((a, b) => a.b - b.b || a.i - b.i);
      cols[l] = keyed.map((k) => k.n);
    }
  };
  for (let i = 0; i < 4; i++) {
    sweep(1, depth, 1, nbUp);
    sweep(depth - 2, -1, -1, nbDown);
  }
  const { nodeWidth: w, nodeHeight: h, columnGap, rowGap } = size;
  const tallest = Math.max(1, ...cols.map((c) => c.length));
  const height = tallest * (h + rowGap) - rowGap;
  const at: Record<string, { x: number; y: number }> = {};
  cols.forEach((c, l) => {
    // each column centred vertically, so a lone node sits level with the middle of a fan-out
    const top = (height - (c.length * (h + rowGap) - rowGap)) / 2;
    c.forEach((n, i) => {
      at[n] = { x: l * (w + columnGap), y: top + i * (h + rowGap) };
    });
  });
  const mid = (n: string) => at[n]!.y + h / 2;
  const paths = edges.map((e) => {
    const i = drawn.indexOf(e);
    if (i < 0) return [];
    const c = chains[i]!;
    return c.map((n, k) =>
      k === 0
        ? { x: at[n]!.x + w, y: mid(n) }
        : k === c.length - 1
          ? { x: at[n]!.x, y: mid(n) }
          : { x: at[n]!.x + w / 2, y: mid(n) },
    );
  });
  const columns = cols.map((c) => c.filter((n) => known.has(n)));
  return { layer, columns, pos: at, paths, width: depth * (w + columnGap) - columnGap, height };
}

/** Everything upstream (made from) and downstream (made from it) of `id`, following the edges both ways. */
export function traceDag(id: string, edges: DagEdge[]): { ancestors: Set<string>; descendants: Set<string> } {
  const walk = (next: (n: string) => string[]) => {
    const found = new Set<string>();
    const stack = [id];
    while (stack.length) {
      for (const m of next(stack.pop()!)) {
        if (m === id || found.has(m)) continue;
        found.add(m);
        stack.push(m);
      }
    }
    return found;
  };
  return {
    ancestors: walk((n) => edges.filter((e) => e.to === n).map((e) => e.from)),
    descendants: walk((n) => edges.filter((e) => e.from === n).map((e) => e.to)),
  };
}
