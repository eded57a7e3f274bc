import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { type Float32Named, SafetensorsReader, type TensorData, writeSafetensors } from '../models/safetensors.ts';
import type { RngState } from './rng.ts';

/**
 * Checkpoint folder `checkpoints/step-000040/`:
 *   trainable.safetensors   the trainable tensors (LoRA A/B, prefix, or the full/freeze weights), fp32, Loom names
 *   optimizer.safetensors   AdamW moments `exp_avg.<name>` and `exp_avg_sq.<name>`
 *   state.json              step, data cursor (epoch, batch in epoch), RNG state, scheduler, best eval, config hash
 *   manifest.json           sha256 and size of each file above, checked before a checkpoint is resumed or loaded, so
 *                           bytes changed on disk are refused naming the file instead of ending the run in NaN
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
  /** QLoRA: how the frozen base was quantised (quant.ts QLORA_SCHEME); absent before 4-bit tiles and for other methods. */
  quant?: string;
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
  writeManifest(tmp);
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

function listCheckpointSteps(root: string): number[] {
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

const MANIFEST = 'manifest.json';
const CHECKED_FILES = ['trainable.safetensors', 'optimizer.safetensors', 'state.json'];

interface Manifest {
  format: 'loom-checkpoint/1';
  files: Record<string, { sha256: string; bytes: number }>;
}

/** sha256 of a file, read in blocks (a full fine-tuning checkpoint can be larger than a Buffer may be). */
function sha256File(path: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(16 << 20);
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function writeManifest(dir: string): void {
  const files: Manifest['files'] = {};
  for (const f of CHECKED_FILES) files[f] = { sha256: sha256File(join(dir, f)), bytes: statSync(join(dir, f)).size };
  writeJsonAtomic(join(dir, MANIFEST), { format: 'loom-checkpoint/1', files } satisfies Manifest);
}

/** How to get past a damaged checkpoint: the earlier ones still in the folder, or a fresh start. */
function corruptHint(dir: string): string {
  const root = dirname(dir);
  const me = basename(dir);
  const earlier = listCheckpointSteps(root)
    .map(checkpointName)
    .filter((n) => n < me);
  return earlier.length
    ? `resume from an earlier checkpoint: move ${dir} out of ${root} (e.g. rename it to ${me}.corrupt) and run --resume again, which then starts from ${earlier[earlier.length - 1]}; or load ${join(root, earlier[earlier.length - 1]!)} directly`
    : `there is no earlier checkpoint in ${root}: move ${dir} away and train again without --resume`;
}

/**
 * Checks every file against the checkpoint's manifest.json. A checkpoint from before manifests existed has none: it
 * loads with a warning (nothing to check it against). Throws CHECKPOINT_CORRUPT naming the first file that differs.
 */
function verifyCheckpoint(dir: string, warn: (line: string) => void = defaultWarn): void {
  const mpath = join(dir, MANIFEST);
  if (!existsSync(mpath)) {
    warn(`warning: checkpoint ${dir} has no ${MANIFEST} (written by an older Loom): its files cannot be checked`);
    return;
  }
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(mpath, 'utf8')) as Manifest;
  } catch (e) {
    throw new LoomError('CHECKPOINT_CORRUPT', `${MANIFEST} is not valid JSON: ${(e as Error).message}`, {
      file: mpath,
      hint: corruptHint(dir),
    });
  }
  if (typeof m.files !== 'object' || m.files === null) {
    throw new LoomError('CHECKPOINT_CORRUPT', `${MANIFEST} lists no files`, { file: mpath, hint: corruptHint(dir) });
  }
  for (const [f, want] of Object.entries(m.files)) {
    const p = join(dir, f);
    if (!existsSync(p)) {
      throw new LoomError('CHECKPOINT_CORRUPT', `${f} is missing from the checkpoint`, {
        file: p,
        hint: corruptHint(dir),
      });
    }
    const bytes = statSync(p).size;
    const sha = bytes === want.bytes ? sha256File(p) : undefined;
    if (sha !== want.sha256) {
      throw new LoomError(
        'CHECKPOINT_CORRUPT',
        sha === undefined
          ? `${f} is ${bytes} bytes, the manifest says ${want.bytes}: the file was changed or damaged after it was saved`
          : `${f} does not match its sha256 in ${MANIFEST} (${sha.slice(0, 12)}… != ${String(want.sha256).slice(0, 12)}…): the file was changed or damaged after it was saved`,
        { file: p, hint: corruptHint(dir) },
      );
    }
  }
}

const defaultWarn = (line: string) => process.stderr.write(`${line}\n`);

/** Verifies (verifyCheckpoint) and reads a checkpoint. */
export function loadCheckpoint(dir: string, warn: (line: string) => void = defaultWarn): CheckpointData {
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) {
    throw new LoomError('CHECKPOINT', `checkpoint ${dir} has no state.json (incomplete)`, { file: dir });
  }
  verifyCheckpoint(dir, warn);
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
