import { existsSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import { LoomError } from '../core/errors.ts';
import type { Registry, RunRecord } from '../registry/db.ts';
import { PipelineStages, type StageRecord } from '../registry/pipeline.ts';

/**
 * `loom lineage <artefact>`: from a path or a run id to everything it came from (data hash → config → checkpoint)
 * and everything made from it (export → endpoint → eval results). Edges are the registry's parent links (each
 * pipeline stage's parent is the stage before it; a train run's parent is its base model's run) plus the runs a
 * pipeline stage recorded itself (its train runs).
 */
export interface LineageNode {
  id: string;
  kind: string;
  status: string;
  outputDir: string;
  createdAt: string;
  datasetHash?: string;
  baseModel?: string;
  /** Pipeline stages: the content hash of each config file and input when it ran. */
  inputs?: Record<string, string>;
  outputs?: Record<string, string>;
  summary?: string;
  /** Last value of each metric the run logged. */
  metrics?: Record<string, number>;
}

export interface Lineage {
  artefact: string;
  target: LineageNode;
  /** Nearest first. */
  upstream: LineageNode[];
  downstream: LineageNode[];
}

function node(reg: Registry, stages: PipelineStages, r: RunRecord): LineageNode {
  const st: StageRecord | undefined = stages.get(r.id);
  const metrics: Record<string, number> = {};
  for (const m of reg.metrics(r.id))
    metrics[m.split && m.split !== 'train' ? `${m.split}/${m.name}` : m.name] = m.value;
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    outputDir: r.outputDir,
    createdAt: r.createdAt,
    ...(r.datasetHash ? { datasetHash: r.datasetHash } : {}),
    ...(r.baseModel ? { baseModel: r.baseModel } : {}),
    ...(st ? { inputs: st.inputs, outputs: st.outputs, summary: st.summary } : {}),
    ...(Object.keys(metrics).length ? { metrics } : {}),
  };
}

/** A run id, or the run whose output folder holds the path (the deepest such folder; the newest run on ties). */
function resolveArtefact(reg: Registry, artefact: string): RunRecord {
  const byId = reg.getRun(artefact);
  if (byId) return byId;
  const abs = resolve(artefact);
  let best: RunRecord | undefined;
  for (const r of reg.listRuns()) {
    const inside = abs === r.outputDir || abs.startsWith(r.outputDir + sep) || r.outputDir.startsWith(abs + sep);
    if (!inside) continue;
    // prefer the run whose folder is the artefact itself, then the deepest enclosing one, then the newest
    const score = (x: RunRecord) =>
      (x.outputDir === abs ? 1e6 : 0) + (abs.startsWith(x.outputDir) ? x.outputDir.length : 0);
    if (!best || score(r) > score(best) || (score(r) === score(best) && r.createdAt >= best.createdAt)) best = r;
  }
  if (!best) {
    throw new LoomError('INPUT_NOT_FOUND', `no recorded run made or holds '${artefact}' / 注册表中没有与之相关的运行`, {
      field: 'artefact',
      hint: existsSync(abs)
        ? 'it exists but no run in this registry wrote it: run `loom run pipeline.yaml` from the project folder'
        : 'pass a path inside a project (e.g. out/export) or a run id from `loom runs list`',
    });
  }
  return best;
}

export function lineageOf(reg: Registry, artefact: string): Lineage {
  const stages = new PipelineStages(reg);
  const target = resolveArtefact(reg, artefact);
  const all = reg.listRuns();
  const byId = new Map(all.map((r) => [r.id, r]));
  const childOf = new Map<string, string[]>();
  const add = (p: string, c: string) => childOf.set(p, [...(childOf.get(p) ?? []), c]);
  for (const r of all) if (r.parentId) add(r.parentId, r.id);

  const upstream: LineageNode[] = [];
  const seen = new Set([target.id]);
  for (let p = target.parentId; p && !seen.has(p); p = byId.get(p)?.parentId) {
    seen.add(p);
    const r = byId.get(p);
    if (!r) break; // a parent recorded in another registry: the chain ends here
    upstream.push(node(reg, stages, r));
  }
  const downstream: LineageNode[] = [];
  const queue = [...(childOf.get(target.id) ?? [])];
  // A run a stage recorded itself (the train run inside pipeline:train) feeds what that stage feeds, so a
  // checkpoint's downstream reaches the eval, export and endpoint too (less the stage's other own runs).
  const own = target.parentId ? stages.children(target.parentId) : [];
  if (own.includes(target.id)) for (const c of childOf.get(target.parentId!) ?? []) if (!own.includes(c)) queue.push(c);
  while (queue.length) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const r = byId.get(id);
    if (!r) continue;
    downstream.push(node(reg, stages, r));
    queue.push(...(childOf.get(id) ?? []));
  }
  return { artefact, target: node(reg, stages, target), upstream, downstream };
}

/** One edge of the lineage DAG: `parent` (the registry's parent link), `feeds` (a run a stage recorded itself feeds
 * what that stage feeds: the checkpoint of pipeline:train's train run goes into eval and export), `recorded` (the
 * stage recorded a run whose parent is elsewhere, e.g. a base model's run). */
export interface LineageEdge {
  from: string;
  to: string;
  relation: 'parent' | 'feeds' | 'recorded';
}

export interface LineageGraph {
  /** Oldest first. */
  nodes: LineageNode[];
  edges: LineageEdge[];
}

/**
 * The whole lineage as a DAG over the runs `keep` selects (the Studio: the runs of one project): a dataset with
 * several training runs, each with its evals and exports, each export with its endpoints, branches and all. The
 * edges are the same links `lineageOf` walks, so a node's ancestors and descendants here are what `loom lineage`
 * prints for it.
 */
export function lineageGraph(reg: Registry, keep: (r: RunRecord) => boolean = () => true): LineageGraph {
  const stages = new PipelineStages(reg);
  const runs = reg.listRuns().filter(keep);
  const ids = new Set(runs.map((r) => r.id));
  const edges: LineageEdge[] = [];
  const seen = new Set<string>();
  const add = (from: string, to: string, relation: LineageEdge['relation']) => {
    const k = `${from}\0${to}`;
    if (from === to || seen.has(k) || !ids.has(from) || !ids.has(to)) return;
    seen.add(k);
    edges.push({ from, to, relation });
  };
  for (const r of runs) if (r.parentId) add(r.parentId, r.id, 'parent');
  for (const r of runs) {
    if (!r.kind.startsWith('pipeline:')) continue;
    const own = stages.children(r.id);
    for (const c of own) add(r.id, c, 'recorded');
    const fed = runs.filter((x) => x.parentId === r.id && !own.includes(x.id));
    for (const c of own) for (const d of fed) add(c, d.id, 'feeds');
  }
  return { nodes: runs.map((r) => node(reg, stages, r)), edges };
}

const short = (h: string): string => (h === 'missing' ? 'missing' : `sha256:${h.slice(0, 12)}`);

function lines(n: LineageNode, cwd: string, mark: string): string[] {
  const out = [`${mark} ${n.kind.padEnd(16)} ${n.id}  ${n.status}  ${relative(cwd, n.outputDir) || '.'}`];
  if (n.datasetHash) out.push(`      dataset ${short(n.datasetHash)}`);
  if (n.baseModel) out.push(`      base    ${n.baseModel}`);
  for (const [p, h] of Object.entries(n.inputs ?? {})) out.push(`      in  ${p} ${short(h)}`);
  for (const [p, h] of Object.entries(n.outputs ?? {})) out.push(`      out ${p} ${short(h)}`);
  for (const [k, v] of Object.entries(n.metrics ?? {}).slice(0, 6)) out.push(`      ${k} ${v}`);
  return out;
}

export function renderLineage(l: Lineage, cwd = process.cwd()): string {
  return [
    `lineage of ${l.artefact}`,
    `upstream (made from / 来源), oldest first:`,
    ...[...l.upstream].reverse().flatMap((n) => lines(n, cwd, '  ↑')),
    ...lines(l.target, cwd, '  ●'),
    `downstream (made from it / 下游):`,
    ...(l.downstream.length ? l.downstream.flatMap((n) => lines(n, cwd, '  ↓')) : ['  (nothing yet)']),
  ].join('\n');
}
