/**
 * The Studio's Lineage page back end: `loom run` launched in-process (the same `runPipeline` as the CLI, on the
 * Studio's registry), the stage records the registry holds for this project (ran/skipped, input and output content
 * hashes), and `lineageOf` for any run or path, with machine paths shown relative to the project.
 */
import { relative, resolve, sep } from 'node:path';
import { LoomError } from '../core/errors.ts';
import type { StageName } from '../pipeline/config.ts';
import { type Lineage, type LineageGraph, type LineageNode, lineageGraph, lineageOf } from '../pipeline/lineage.ts';
import { type PipelineReport, runPipeline } from '../pipeline/run.ts';
import type { Registry } from '../registry/db.ts';
import { PipelineStages, type StageRecord } from '../registry/pipeline.ts';

export interface PipelineJobState {
  config: string;
  status: 'running' | 'finished' | 'failed';
  report?: PipelineReport;
  error?: string;
  log: string[];
}

export interface PipelineRunOptions {
  from?: StageName;
  only?: StageName;
  force?: boolean;
}

/** One `loom run` at a time; Stop aborts it through the same signal as Ctrl-C (training keeps its checkpoint). */
export class PipelineJob {
  private current?: { state: PipelineJobState; abort: AbortController; done: Promise<void> };

  constructor(private readonly registryPath: string) {}

  start(file: string, rel: string, o: PipelineRunOptions): PipelineJobState {
    if (this.current?.state.status === 'running')
      throw new LoomError('TRAIN_INVALID', 'a pipeline run is already going', { hint: 'stop it first' });
    const abort = new AbortController();
    const state: PipelineJobState = { config: rel, status: 'running', log: [] };
    const done = runPipeline(file, {
      ...o,
      registry: this.registryPath,
      signal: abort.signal,
      log: (line) => {
        state.log.push(line);
        if (state.log.length > 200) state.log.shift();
      },
    }).then(
      (report) => {
        state.report = report;
        state.status = 'finished';
      },
      (e: unknown) => {
        state.status = 'failed';
        state.error = e instanceof Error ? e.message : String(e);
      },
    );
    this.current = { state, abort, done };
    return state;
  }

  stop(): PipelineJobState {
    if (this.current?.state.status !== 'running') throw new LoomError('TRAIN_INVALID', 'no pipeline run is going');
    this.current.abort.abort();
    return this.current.state;
  }

  status(): PipelineJobState | null {
    return this.current?.state ?? null;
  }

  async close(): Promise<void> {
    if (!this.current) return;
    if (this.current.state.status === 'running') this.current.abort.abort();
    await this.current.done;
  }
}

const rel = (dir: string, p: string): string => {
  const r = relative(dir, p);
  return r.startsWith('..') ? p : r || '.';
};

const within = (dir: string, p: string): boolean => p === dir || p.startsWith(dir + sep);

/** Stage records of pipelines inside the project, newest first. */
export function stageHistory(registry: Registry, dir: string, limit = 100): (StageRecord & { project: string })[] {
  return new PipelineStages(registry)
    .all()
    .filter((s) => within(dir, s.project))
    .reverse()
    .slice(0, limit)
    .map((s) => ({ ...s, project: rel(dir, s.project) }));
}

/** Registry runs whose output is in the project (the lineage page's picker), newest first. */
export function projectRuns(
  registry: Registry,
  dir: string,
): { id: string; kind: string; status: string; outputDir: string }[] {
  return registry
    .listRuns()
    .filter((r) => within(dir, r.outputDir))
    .reverse()
    .map((r) => ({ id: r.id, kind: r.kind, status: r.status, outputDir: rel(dir, r.outputDir) }));
}

const relNode = (dir: string, n: LineageNode): LineageNode => ({
  ...n,
  outputDir: rel(dir, n.outputDir),
  ...(n.baseModel ? { baseModel: rel(dir, n.baseModel) } : {}),
});

/** The project's whole lineage DAG (every registry run whose output is in the project), paths relative to it. */
export function projectGraph(registry: Registry, dir: string): LineageGraph {
  const g = lineageGraph(registry, (r) => within(dir, r.outputDir));
  return { nodes: g.nodes.map((n) => relNode(dir, n)), edges: g.edges };
}

/** `loom lineage` for a run id or a project-relative path, output folders relative to the project. */
export function projectLineage(registry: Registry, dir: string, artefact: string): Lineage {
  const byId = registry.getRun(artefact);
  const abs = resolve(dir, artefact);
  if (!byId && !within(dir, abs)) {
    throw new LoomError('INPUT_NOT_FOUND', `path "${artefact.slice(0, 200)}" is outside the project`, {
      field: 'artefact',
      hint: 'pick a run the Studio listed, or a path relative to the project folder',
    });
  }
  const l = lineageOf(registry, byId ? artefact : abs);
  const fix = (n: LineageNode): LineageNode => relNode(dir, n);
  return {
    artefact,
    target: fix(l.target),
    upstream: l.upstream.map(fix),
    downstream: l.downstream.map(fix),
  };
}
