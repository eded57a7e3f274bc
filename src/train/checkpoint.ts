import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { type Float32Named, SafetensorsReader, type TensorData, writeSafetensors } from '../models/safetensors.ts';
import type { RngState } from './rng.ts';

/**
 * Checkpoint folder `checkpoints/step-000040/`:
 *   trainable.safetensors   the trainable tensors (LoRA A/B, prefix, or the full/freeze weights), fp32, Loom names
 *   optimizer.safetensors   AdamW moments `exp_avg.<name>` and `exp_avg_sq.<name>`
 *   state.json              step, data cursor (epoch, batch in epoch), RNG state, scheduler, best eval, config hash
 * A checkpoint is written into a temp folder and renamed, and `checkpoints/latest.json` is replaced afterwards, so a
 * SIGKILL at any moment leaves the previous checkpoint intact and pointed to.
 */
export interface TrainState {
  /** Optimiser steps taken. */
  step: number;
  /** Data cursor: the next batch to train is batch `batchInEpoch` of epoch `epoch`. */
  epoch: number;
  batchInEpoch: number;
  rng: RngState;
  tokensSeen: number;
  bestEvalLoss: number | null;
  bestStep: number | null;
  /** Evaluations since the best one (early stopping). */
  badEvals: number;
  configHash: string;
  /** Wall time spent training so far (seconds), for ETA after resume. */
  elapsed: number;
}

export interface CheckpointData {
  state: TrainState;
  params: Float32Named[];
  m: Float32Named[];
  v: Float32Named[];
}

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

export function saveCheckpoint(outputDir: string, ck: CheckpointData, keep: number, protect: number[] = []): string {
  const root = join(outputDir, 'checkpoints');
  const name = checkpointName(ck.state.step);
  const final = join(root, name);
  const tmp = join(root, `.${name}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const entries = (list: Float32Named[], prefix: string): [string, TensorData][] =>
    list.map((p) => [`${prefix}${p.name}`, { dtype: 'F32', shape: p.dims, data: p.data }]);
  writeSafetensors(join(tmp, 'trainable.safetensors'), entries(ck.params, ''));
  writeSafetensors(join(tmp, 'optimizer.safetensors'), [...entries(ck.m, 'exp_avg.'), ...entries(ck.v, 'exp_avg_sq.')]);
  writeJsonAtomic(join(tmp, 'state.json'), ck.state);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeJsonAtomic(join(root, 'latest.json'), { checkpoint: name, step: ck.state.step });
  pruneCheckpoints(root, keep, [ck.state.step, ...protect]);
  return final;
}

function pruneCheckpoints(root: string, keep: number, protect: number[]): void {
  const steps = listCheckpointSteps(root);
  const removable = steps.filter((s) => !protect.includes(s));
  const excess = steps.length - Math.max(keep, protect.length);
  for (const s of removable.slice(0, Math.max(0, excess)))
    rmSync(join(root, checkpointName(s)), { recursive: true, force: true });
  for (const n of readdirSync(root)) if (n.endsWith('.tmp')) rmSync(join(root, n), { recursive: true, force: true });
}

export function listCheckpointSteps(root: string): number[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** The checkpoint `latest.json` points to (or the highest complete one), undefined when there is none. */
export function latestCheckpoint(outputDir: string): string | undefined {
  const root = join(outputDir, 'checkpoints');
  const ptr = join(root, 'latest.json');
  if (existsSync(ptr)) {
    const { checkpoint } = JSON.parse(readFileSync(ptr, 'utf8')) as { checkpoint: string };
    if (existsSync(join(root, checkpoint, 'state.json'))) return join(root, checkpoint);
  }
  const steps = listCheckpointSteps(root).filter((s) => existsSync(join(root, checkpointName(s), 'state.json')));
  return steps.length ? join(root, checkpointName(steps[steps.length - 1]!)) : undefined;
}

export function loadCheckpoint(dir: string): CheckpointData {
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) {
    throw new LoomError('CHECKPOINT', `checkpoint ${dir} has no state.json (incomplete)`, { file: dir });
  }
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainState;
  const read = (file: string, prefix: string): Float32Named[] => {
    const r = SafetensorsReader.open(join(dir, file));
    try {
      return r
        .names()
        .filter((n) => n.startsWith(prefix))
        .map((n) => {
          const t = r.readFloat32(n);
          return { name: n.slice(prefix.length), dims: t.dims, data: t.data };
        });
    } finally {
      r.close();
    }
  };
  return {
    state,
    params: read('trainable.safetensors', ''),
    m: read('optimizer.safetensors', 'exp_avg.'),
    v: read('optimizer.safetensors', 'exp_avg_sq.'),
  };
}
