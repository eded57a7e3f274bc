import { cpus } from 'node:os';
import { resolve } from 'node:path';
import type { TrainConfig } from '../config/train.ts';
import { Engine } from '../engine/index.ts';
import type { Float32Named } from '../models/safetensors.ts';
import type { Registry } from '../registry/db.ts';
import { closeRun, openRun, runIdOf, writeArtefacts } from './artefacts.ts';
import { buildTrainGraphs } from './graph.ts';
import { loadSessions, TrainLoop } from './loop.ts';
import { detectOverfitting, type OverfitFlag } from './metrics.ts';
import { methodOptions } from './options.ts';
import { type Preflight, preflight } from './preflight.ts';
import { checkJob, loadResume, prepare } from './prepare.ts';
import { Rng } from './rng.ts';

/**
 * The training run, in four stages: prepare (prepare.ts: model, tokenizer, rows, resume checkpoint) → pre-flight
 * (preflight.ts: counts, memory estimate, one measured step) → loop (loop.ts: optimiser steps, metrics, evaluation,
 * checkpoints) → artefacts (artefacts.ts: PEFT adapter, merged or full model folder, loss chart, lineage).
 * Library entry point: `runTraining(job)`; `loom train` is a thin shell over it.
 */
export interface TrainJob {
  config: TrainConfig;
  /** Relative paths in the config resolve against this folder. */
  baseDir: string;
  resume?: boolean;
  dryRun?: boolean;
  merge?: boolean;
  /** Set when the user pressed Ctrl-C: the loop saves a checkpoint and returns. */
  signal?: AbortSignal;
  registry?: Registry;
  /** Print lines (pre-flight, summary). Default: stderr. */
  log?: (line: string) => void;
  quiet?: boolean;
  /** Stop after this many optimiser steps in this process (tests of interruption). */
  stopAfterSteps?: number;
  threads?: number;
  /**
   * Pre-flight's timing probe. `full` (default): warm-up runs, then the fastest of two runs of up to four batch
   * sizes. `quick`: one run of one batch (and of one eval batch), no warm-up, so the time estimate is rough; for
   * callers that never read it (tests of what training computes). The probe never changes the run: it steps with
   * step size 0 and restores the random stream, so both give identical weights.
   */
  probe?: 'full' | 'quick';
}

export interface TrainResult {
  runId: string;
  outputDir: string;
  preflight: Preflight;
  steps: number;
  firstLoss?: number;
  lastLoss?: number;
  initialEvalLoss?: number;
  bestEvalLoss?: number;
  interrupted: boolean;
  earlyStopped: boolean;
  /** Pre-flight's estimate of the loop (steps + evaluations) against the loop's wall time in this process. */
  timing?: { estimatedSeconds: number; measuredSeconds: number };
  /** Set when validation loss rose while train loss fell over the last evaluations (metrics.ts). */
  overfitting?: OverfitFlag;
  outputs: string[];
  /** Final trainable tensors (tests compare them bit for bit). */
  params: Float32Named[];
}

const log = (job: TrainJob) => job.log ?? ((l: string) => process.stderr.write(`${l}\n`));

export async function runTraining(job: TrainJob): Promise<TrainResult> {
  const c = job.config;
  const outputDir = resolve(job.baseDir, c.output_dir);
  checkJob(job);
  const p = await prepare(job);
  const mo = methodOptions(c, p.isPacked || c.packing);
  const resumeFrom = job.resume ? loadResume(outputDir, c, log(job)) : undefined;
  const initial = new Map<string, Float32Array>((resumeFrom?.params ?? []).map((t) => [t.name, t.data]));
  const graphs = buildTrainGraphs(p.model, p.weights, mo, () => new Rng((c.seed ^ 0x5eed1234) >>> 0), initial, {
    accumulate: c.gradient_accumulation_steps > 1,
    evaluate: p.evalRows.length > 0,
  });

  const engine = await Engine.create({ threads: job.threads ?? c.threads ?? cpus().length });
  try {
    const loop = new TrainLoop(c, p, graphs, await loadSessions(engine, graphs, c), resumeFrom);
    const pre = await preflight(loop, job.quiet ? undefined : log(job), job.probe ?? 'full');
    const result: TrainResult = {
      runId: runIdOf(outputDir, loop.state.configHash),
      outputDir,
      preflight: pre,
      steps: loop.state.step,
      interrupted: false,
      earlyStopped: false,
      outputs: [],
      params: [],
    };
    if (job.dryRun) return result;

    const run = openRun(job, p, outputDir, loop.state.configHash, resumeFrom ? loop.state.step : undefined);
    const tLoop = performance.now();
    if (!resumeFrom && loop.canEvaluate()) result.initialEvalLoss = await loop.evaluate();
    await loop.run({
      ...run,
      outputDir,
      registry: job.registry,
      signal: job.signal,
      stopAfterSteps: job.stopAfterSteps,
      quiet: job.quiet,
      result,
    });
    result.steps = loop.state.step;
    result.timing = { estimatedSeconds: pre.estimatedRunSeconds, measuredSeconds: (performance.now() - tLoop) / 1000 };
    result.bestEvalLoss = loop.state.bestEvalLoss ?? undefined;
    result.overfitting = detectOverfitting(run.metrics.read());
    result.params = loop.named();
    if (!result.interrupted) {
      loop.checkpoint(outputDir);
      result.outputs.push(...writeArtefacts(job, p, mo, result.params, outputDir));
    }
    result.outputs.push(...closeRun(outputDir, run));
    job.registry?.setStatus(run.runId, result.interrupted ? 'interrupted' : 'finished');
    await loop.release();
    return result;
  } finally {
    await engine.close();
  }
}
