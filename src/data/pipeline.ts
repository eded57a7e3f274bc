import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { DataConfig, DataConfigInput } from '../config/data.ts';
import { LoomError } from '../core/errors.ts';
import { estimateLshMemory } from './dedup/lsh.ts';
import { shownPath } from './ingest/index.ts';
import { writeOutputs } from './outputs.ts';
import {
  buildSteps,
  clearOutputs,
  configHash,
  DONE_FILE,
  emptyCounts,
  estimateRows,
  meteredStep,
  OUTPUT_FILES,
  openRun,
  planFiles,
  type RunDataOptions,
  type RunDataResult,
  readDone,
  resolveConfig,
  tokenCounterOf,
} from './setup.ts';
import { runShard } from './shard-run.ts';
// ---------------------------------------------------------------------------------------------------------------
// Entry points

export interface DataPlan {
  name: string;
  outDir: string;
  config: DataConfig;
  steps: string[];
  inputs: { file: string; bytes: number; estimated_rows: number }[];
  estimated_rows: number;
  /** Up-front estimate of the near-dedup index memory (src/data/dedup/lsh.ts), when near-dedup is on. */
  near_dedup_memory?: string;
}

/** What a run would do, without doing it: resolved config, files, steps and the near-dedup memory estimate. */
export function planDataPipeline(config: string | DataConfigInput, opts: RunDataOptions = {}): DataPlan {
  const r = resolveConfig(config, opts);
  const plan = planFiles(r.cfg, r.baseDir, opts.shard);
  const inputs = plan.flatMap((p) =>
    p.files.map((f) => ({ file: shownPath(f, r.baseDir), bytes: statSync(f).size, estimated_rows: estimateRows(f) })),
  );
  const rows = inputs.reduce((a, i) => a + i.estimated_rows, 0);
  const steps = ['ingest', ...buildSteps(r.cfg).map((s) => s.name), ...(r.cfg.split ? ['split'] : [])];
  const near = r.cfg.dedup.near;
  return {
    name: r.name,
    outDir: r.outDir,
    config: r.cfg,
    steps,
    inputs,
    estimated_rows: rows,
    near_dedup_memory: near ? estimateLshMemory(rows, near).text : undefined,
  };
}

/** Runs a data.yaml (path) or a config object end to end. */
export async function runDataPipeline(
  config: string | DataConfigInput,
  opts: RunDataOptions = {},
): Promise<RunDataResult> {
  const r = resolveConfig(config, opts);
  const t0 = Date.now();
  const plan = planFiles(r.cfg, r.baseDir, opts.shard);
  const allFiles = plan.flatMap((p) => p.files);
  const hash = configHash(r, allFiles, { shard: opts.shard ?? null });
  if (opts.shard) return runShard(r, plan, opts, hash);

  for (const f of allFiles) {
    if (resolve(f, '..') === r.outDir && OUTPUT_FILES.includes(basename(f))) {
      throw new LoomError('CONFIG_INVALID', `out_dir ${r.outDir} holds the input ${f}, which the run would replace`, {
        field: 'out_dir',
        hint: 'write the outputs to another folder (out_dir: out/data)',
      });
    }
  }
  const prev = readDone(r.outDir);
  if (!opts.force && prev?.hash === hash && prev.outputs && Object.values(prev.outputs).every((p) => existsSync(p))) {
    const done = JSON.parse(readFileSync(join(r.outDir, DONE_FILE), 'utf8')) as { counts: RunDataResult['counts'] };
    return {
      status: 'up-to-date',
      outDir: r.outDir,
      counts: done.counts ?? emptyCounts(),
      outputs: prev.outputs,
    };
  }
  clearOutputs(r.outDir);
  const { tmpDir, report, rejectsWriter, sink, ctx, progress, source } = openRun(
    r,
    plan,
    opts,
    r.outDir,
    `data ${r.name}`,
  );
  try {
    let rows = source();
    for (const step of buildSteps(r.cfg, { countTokens: await tokenCounterOf(r) }))
      rows = meteredStep(step, rows, ctx, report, sink);
    const res = await writeOutputs(
      r,
      rows,
      ctx,
      report,
      sink,
      rejectsWriter,
      t0,
      allFiles.map((f) => shownPath(f, r.baseDir)),
      hash,
    );
    progress.done({ output: res.counts.output });
    return res;
  } catch (e) {
    await rejectsWriter.abort();
    throw e;
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

export { mergeDataShards } from './merge.ts';
export type { RunDataOptions, RunDataResult } from './setup.ts';
