import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lineageGraph, lineageOf } from '../../src/pipeline/lineage.ts';
import { Registry } from '../../src/registry/db.ts';
import { layoutDag, traceDag } from '../../src/studio/dag.ts';
import { branchingRuns } from './fixture.ts';

const tmp = mkdtempSync(join(tmpdir(), 'loom-dag-'));
const reg = new Registry(join(tmp, 'registry.db'));
after(() => {
  reg.close();
  rmSync(tmp, { recursive: true, force: true });
});
const { ids, edges: want } = branchingRuns(reg, tmp);

test('lineageGraph: every run of a branching project and exactly the hand-listed edges', () => {
  const g = lineageGraph(reg);
  assert.deepEqual(
    g.nodes.map((n) => n.id),
    ids,
  );
  const key = (e: { from: string; to: string; relation: string }) => `${e.from} -${e.relation}-> ${e.to}`;
  assert.deepEqual(g.edges.map(key).sort(), want.map(key).sort());
  // a filter keeps only edges between kept runs
  const only = lineageGraph(reg, (r) => r.id !== 'br-train-a');
  assert.ok(!only.edges.some((e) => e.from === 'br-train-a' || e.to === 'br-train-a'));
});

test('tracing the DAG agrees with loom lineage (lineageOf) for every node', () => {
  const g = lineageGraph(reg);
  for (const id of ids) {
    const t = traceDag(id, g.edges);
    const l = lineageOf(reg, id);
    assert.deepEqual([...t.descendants].sort(), l.downstream.map((n) => n.id).sort(), `${id} downstream`);
    // upstream, lineageOf walks the single parent chain; the DAG also names the train run a stage recorded, whose
    // checkpoint fed this run (lineageOf lists the same link from the other end, in that run's downstream)
    const extra = [...t.ancestors].filter((a) => !l.upstream.some((n) => n.id === a));
    for (const u of l.upstream) assert.ok(t.ancestors.has(u.id), `${id} upstream ${u.id}`);
    assert.deepEqual(extra, id === 'br-stage-eval' ? ['br-stage-train-run'] : [], `${id} extra ancestors`);
  }
  // by hand, for the branch points
  assert.deepEqual([...traceDag('br-serve-a', g.edges).ancestors].sort(), ['br-data', 'br-export-a', 'br-train-a']);
  assert.deepEqual([...traceDag('br-train-b', g.edges).descendants].sort(), ['br-eval-b', 'br-export-b']);
});

/** Proper intersection of two segments (shared end points do not count): the independent crossing counter. */
function cross(a: { x: number; y: number }[], b: { x: number; y: number }[]): boolean {
  const o = (p: { x: number; y: number }, q: { x: number; y: number }, r: { x: number; y: number }) =>
    Math.sign((q.x - p.x) * (r.y - p.y) - (q.y - p.y) * (r.x - p.x));
  const [p1, p2] = a as [{ x: number; y: number }, { x: number; y: number }];
  const [q1, q2] = b as [{ x: number; y: number }, { x: number; y: number }];
  return o(p1, p2, q1) * o(p1, p2, q2) < 0 && o(q1, q2, p1) * o(q1, q2, p2) < 0;
}

test('layoutDag: columns by longest path, boxes apart, edges left to right, no crossings on a branching tree', () => {
  const nodes = ['data', 'trainA', 'trainB', 'evalA', 'exportA', 'evalB', 'exportB', 'serveA', 'evalData'];
  const edges = [
    { from: 'data', to: 'trainA' },
    { from: 'data', to: 'trainB' },
    { from: 'trainA', to: 'evalA' },
    { from: 'trainA', to: 'exportA' },
    { from: 'trainB', to: 'evalB' },
    { from: 'trainB', to: 'exportB' },
    { from: 'exportA', to: 'serveA' },
    // an eval of the dataset itself, and a skip edge data → serveA (spans three columns)
    { from: 'data', to: 'evalData' },
    { from: 'evalData', to: 'evalB' },
    { from: 'data', to: 'serveA' },
  ];
  const size = { nodeWidth: 100, nodeHeight: 40, columnGap: 50, rowGap: 10 };
  const l = layoutDag(nodes, edges, size);
  assert.deepEqual(l.layer, {
    data: 0,
    trainA: 1,
    trainB: 1,
    evalData: 1,
    evalA: 2,
    exportA: 2,
    evalB: 2,
    exportB: 2,
    serveA: 3,
  });
  assert.deepEqual(l.columns.flat().sort(), [...nodes].sort(), 'every node placed once');
  for (const a of nodes)
    for (const b of nodes) {
      if (a >= b) continue;
      const p = l.pos[a]!;
      const q = l.pos[b]!;
      const apart = p.x + 100 <= q.x || q.x + 100 <= p.x || p.y + 40 <= q.y || q.y + 40 <= p.y;
      assert.ok(apart, `${a} and ${b} overlap`);
    }
  edges.forEach((e, i) => {
    const path = l.paths[i]!;
    assert.deepEqual(
      path[0],
      { x: l.pos[e.from]!.x + 100, y: l.pos[e.from]!.y + 20 },
      'leaves the source’s right side',
    );
    assert.deepEqual(path.at(-1), { x: l.pos[e.to]!.x, y: l.pos[e.to]!.y + 20 }, 'enters the target’s left side');
    for (let k = 1; k < path.length; k++) assert.ok(path[k]!.x > path[k - 1]!.x, 'always left to right');
  });
  assert.equal(l.paths[9]!.length, 4, 'the skip edge bends once per column it crosses');
  const segs = l.paths.flatMap((p) => p.slice(1).map((q, k) => [p[k]!, q]));
  let crossings = 0;
  for (let i = 0; i < segs.length; i++)
    for (let j = i + 1; j < segs.length; j++) if (cross(segs[i]!, segs[j]!)) crossings++;
  assert.equal(crossings, 0);
  assert.ok(l.width >= 4 * 100 + 3 * 50 && l.height >= 4 * 40, 'the canvas holds every box');
});

test('layoutDag survives a cycle (a corrupt registry) and edges to unknown nodes', () => {
  const l = layoutDag(
    ['a', 'b', 'c'],
    [
      { from: 'a', to: 'b' },
      { from: 'b', to: 'c' },
      { from: 'c', to: 'b' },
      { from: 'a', to: 'zz' },
    ],
  );
  assert.deepEqual(l.columns.flat().sort(), ['a', 'b', 'c']);
  assert.deepEqual(l.paths[3], []);
});
