import { randomUUID } from 'node:crypto';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { LoomError } from '../core/errors.ts';
import { Registry, registryFromEnv } from '../registry/db.ts';
import { PipelineStages, type StageRecord } from '../registry/pipeline.ts';
import { loadPipelineConfig, type PipelineConfig, STAGES, type StageName } from './config.ts';
import { hashPath, hashString } from './hash.ts';
import {
  runDataStage,
  runEvalStage,
  runExportStage,
  runServeStage,
  runTrainStage,
  type StageContext,
  type StageOutcome,
} from './stages.ts';

/**
 * `loom run pipeline.yaml`: data → train → eval → export → serve, each stage skipped when the content hashes of its
 * config files and inputs equal those of its last finished run and its outputs are still as that run left them.
 * A stage that crashed has no finished record, so it runs again; training resumes from its checkpoints.
 * Library entry point: `runPipeline(file, opts)`; the CLI and the studio both call it.
 */
export interface RunPipelineOptions {
  /** Start at this stage (earlier stages are neither run nor checked). */
  from?: StageName;
  /** Run only this stage. */
  only?: StageName;
  /** Run even when nothing changed. */
  force?: boolean;
  log?: (line: string) => void;
  threads?: number;
  signal?: AbortSignal;
  /** Registry file; default: the pipeline's `registry` key relative to the project, or $LOOM_REGISTRY. */
  registry?: string;
}

export interface StageReport {
  stage: StageName;
  status: 'ran' | 'skipped';
  /** Why it ran or was skipped, in one line. */
  reason: string;
  runId: string;
  summary: string;
  seconds: number;
}

export interface PipelineReport {
  project: string;
  name: string;
  registry: string;
  stages: StageReport[];
}

type StageDef = { files: string[]; inputs: string[]; outputs: string[]; options: unknown };

/** What a stage depends on and produces, all relative to the project. */
function describe(cfg: PipelineConfig, stage: StageName): StageDef | undefined {
  const s = cfg.stages;
  switch (stage) {
    case 'data':
      return s.data && { files: [s.data.config], inputs: s.data.inputs, outputs: s.data.outputs, options: s.data };
    case 'train':
      return (
        s.train && {
          files: [...(s.train.pretrain ? [s.train.pretrain] : []), s.train.config],
          inputs: s.train.inputs,
          outputs: s.train.outputs,
          options: s.train,
        }
      );
    case 'eval':
      return s.eval && { files: [s.eval.config], inputs: s.eval.inputs, outputs: s.eval.outputs, options: s.eval };
    case 'export':
      return s.export && { files: [], inputs: [s.export.input], outputs: [s.export.out], options: s.export };
    case 'serve':
      return (
        s.serve && {
          files: [s.serve.config],
          inputs: s.serve.inputs,
          outputs: ['out/serve/endpoint.json'],
          options: s.serve,
        }
      );
  }
}

function hashes(project: string, paths: readonly string[]): Record<string, string> {
  return Object.fromEntries(paths.map((p) => [p, hashPath(resolve(project, p))]));
}

/** The first difference between the last finished run and now, in words (why a stage runs). */
function whyRun(
  prev: StageRecord | undefined,
  inputs: Record<string, string>,
  outputs: Record<string, string>,
): string {
  if (!prev) return 'no finished run of this stage yet';
  for (const [p, h] of Object.entries(inputs)) {
    if (prev.inputs[p] === undefined) return `${p} is a new input`;
    if (prev.inputs[p] !== h) return h === 'missing' ? `${p} is missing` : `${p} changed`;
  }
  for (const p of Object.keys(prev.inputs)) if (!(p in inputs)) return `${p} is no longer an input`;
  for (const [p, h] of Object.entries(prev.outputs)) {
    if (outputs[p] !== h) return outputs[p] === 'missing' ? `output ${p} is missing` : `output ${p} was modified`;
  }
  return '';
}

const BODIES: Record<StageName, (ctx: StageContext, cfg: PipelineConfig) => Promise<StageOutcome>> = {
  data: (ctx, c) => runDataStage(ctx, c.stages.data!),
  train: (ctx, c) => runTrainStage(ctx, c.stages.train!),
  eval: (ctx, c) => runEvalStage(ctx, c.stages.eval!),
  export: (ctx, c) => runExportStage(ctx, c.stages.export!),
  serve: (ctx, c) => runServeStage(ctx, c.stages.serve!),
};

function checkStage(name: string | undefined, flag: string, cfg: PipelineConfig, file: string): void {
  if (name === undefined) return;
  if (!(STAGES as readonly string[]).includes(name)) {
    throw new LoomError('CONFIG_INVALID', `${flag} ${name}: no such stage`, {
      field: flag,
      hint: `one of ${STAGES.join(', ')}`,
    });
  }
  if (!cfg.stages[name as StageName]) {
    throw new LoomError('CONFIG_INVALID', `${flag} ${name}: ${file} has no ${name} stage`, {
      file,
      field: `stages.${name}`,
      hint: `stages in this pipeline: ${STAGES.filter((s) => cfg.stages[s]).join(', ')}`,
    });
  }
}

export function pipelineRegistryPath(project: string, cfg: PipelineConfig, explicit?: string): string {
  if (explicit) return resolve(explicit);
  const env = registryFromEnv();
  if (env) return resolve(env);
  return isAbsolute(cfg.registry) ? cfg.registry : resolve(project, cfg.registry);
}

export async function runPipeline(file: string, opts: RunPipelineOptions = {}): Promise<PipelineReport> {
  const { config: cfg, path } = loadPipelineConfig(file);
  const project = dirname(path);
  checkStage(opts.from, '--from', cfg, path);
  checkStage(opts.only, '--only', cfg, path);
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const regPath = pipelineRegistryPath(project, cfg, opts.registry);
  const registry = new Registry(regPath);
  const records = new PipelineStages(registry);
  const ctx: StageContext = { project, registry, log, threads: opts.threads, signal: opts.signal };
  const report: PipelineReport = { project, name: cfg.name, registry: regPath, stages: [] };
  const order = STAGES.filter((s) => cfg.stages[s]);
  const start = opts.only ? order.indexOf(opts.only) : opts.from ? order.indexOf(opts.from) : 0;
  const selected = opts.only ? [opts.only] : order.slice(start);
  // the upstream stage's newest finished run is the parent, also when that stage is not run now (--from)
  let parent = start > 0 ? records.lastFinished(project, order[start - 1]!)?.runId : undefined;
  try {
    for (const stage of selected) {
      const def = describe(cfg, stage)!;
      const t0 = performance.now();
      const inputs = hashes(project, [...def.files, ...def.inputs]);
      const fingerprint = hashString(JSON.stringify({ stage, options: def.options, inputs }));
      const prev = records.lastFinished(project, stage);
      const outputsNow = hashes(project, def.outputs);
      let why = opts.force ? '--force' : whyRun(prev, inputs, outputsNow);
      if (!why && prev && prev.fingerprint !== fingerprint) why = `the ${stage} options in pipeline.yaml changed`;
      if (!why && prev) {
        log(`== ${stage}: skipped (inputs and config unchanged since run ${prev.runId})`);
        report.stages.push({
          stage,
          status: 'skipped',
          reason: `inputs and config unchanged since run ${prev.runId}`,
          runId: prev.runId,
          summary: prev.summary,
          seconds: 0,
        });
        // The upstream stage may have re-run with byte-identical outputs (this stage's inputs hashed unchanged):
        // the kept run now stands on that newer upstream run, so lineage follows the artefact actually served.
        if (parent) registry.db.prepare('UPDATE runs SET parent_id = ? WHERE id = ?').run(parent, prev.runId);
        parent = prev.runId;
        continue;
      }
      const crashed = records.last(project, stage);
      if (crashed?.status === 'running') why += ` (the last run ${crashed.runId} did not finish)`;
      log(`== ${stage}: running (${why})`);
      const runId = `pipeline-${stage}-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomUUID().slice(0, 6)}`;
      const startedAt = new Date().toISOString();
      const base = { runId, project, stage, fingerprint, inputs, startedAt };
      records.put({ ...base, outputs: {}, status: 'running', summary: '' });
      registry.upsertRun({
        id: runId,
        kind: `pipeline:${stage}`,
        status: 'running',
        outputDir: resolve(project, def.outputs[0] ?? '.'),
        parentId: parent,
        config: { pipeline: relative(project, path), stage, options: def.options, inputs },
        createdAt: startedAt,
      });
      let outcome: StageOutcome;
      try {
        outcome = await BODIES[stage](ctx, cfg);
      } catch (e) {
        records.put({ ...base, outputs: {}, status: 'failed', summary: (e as Error).message, finishedAt: now() });
        registry.setStatus(runId, 'failed');
        throw e;
      }
      for (const child of outcome.childRuns ?? []) {
        registry.db.prepare('UPDATE runs SET parent_id = COALESCE(parent_id, ?) WHERE id = ?').run(runId, child);
        records.linkChild(runId, child);
      }
      const outputs = hashes(project, def.outputs);
      records.put({ ...base, outputs, status: 'finished', summary: outcome.summary, finishedAt: now() });
      registry.setStatus(runId, 'finished');
      const seconds = (performance.now() - t0) / 1000;
      log(`${outcome.summary}\n   (${seconds.toFixed(1)} s, run ${runId})`);
      report.stages.push({ stage, status: 'ran', reason: why, runId, summary: outcome.summary, seconds });
      parent = runId;
    }
  } finally {
    registry.close();
  }
  return report;
}

const now = (): string => new Date().toISOString();
