/**
 * A training checkpoint (`<run>/checkpoints/step-000040/`) opened as a model, for `loom generate`, `loom chat` and
 * `loom export`: the run's base model (lineage.json `base_model`) with the checkpoint's trainable tensors applied
 * (LoRA/QLoRA merged at the run's scale in float64 accumulation, full/freeze weights replacing the base ones).
 * The checkpoint's files are checked against its manifest first (verifyCheckpoint), so a damaged file is refused
 * naming it rather than producing garbage text.
 *
 * API:
 *   isCheckpointDir(dir)                 -> boolean (state.json + trainable.safetensors)
 *   openCheckpointModel(dir, warn?)      -> { config, weights, baseDir, generationConfig, runDir, method, step }
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { trainConfigSchema } from '../config/train.ts';
import { LoomError } from '../core/errors.ts';
import type { LlamaConfig } from '../models/config.ts';
import { loadWeights, openModelFolder } from '../models/folder.ts';
import { mergeLoraInto } from '../models/peft.ts';
import type { Float32Named, Float32Tensor } from '../models/safetensors.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { loraOptions, type Method } from './options.ts';

export interface CheckpointModel {
  config: LlamaConfig;
  weights: Map<string, Float32Tensor>;
  /** The base model folder: tokenizer, chat template and generation_config come from it. */
  baseDir: string;
  generationConfig: Record<string, unknown>;
  runDir: string;
  method: Method;
  step: number;
}

export function isCheckpointDir(dir: string): boolean {
  return existsSync(join(dir, 'state.json')) && existsSync(join(dir, 'trainable.safetensors'));
}

function readRunFile(runDir: string, file: string, dir: string): string {
  const p = join(runDir, file);
  if (!existsSync(p)) {
    throw new LoomError('INPUT_NOT_FOUND', `the checkpoint's run folder has no ${file}`, {
      file: p,
      hint: `a checkpoint is loaded from inside its run folder (<run>/checkpoints/step-N); keep ${dir} there, next to the run's ${file}`,
    });
  }
  return readFileSync(p, 'utf8');
}

export function openCheckpointModel(input: string, warn?: (line: string) => void): CheckpointModel {
  const dir = resolve(input);
  const ck = loadCheckpoint(dir, warn);
  const runDir = dirname(dirname(dir));
  const c = trainConfigSchema.parse(parseYaml(readRunFile(runDir, 'config.yaml', dir)));
  const lineage = JSON.parse(readRunFile(runDir, 'lineage.json', dir)) as { base_model?: unknown };
  const baseDir = typeof lineage.base_model === 'string' ? lineage.base_model : '';
  if (!baseDir || !existsSync(join(baseDir, 'config.json'))) {
    throw new LoomError('INPUT_NOT_FOUND', `the run's base model ${baseDir || '(unnamed)'} is not a model folder`, {
      file: join(runDir, 'lineage.json'),
      field: 'base_model',
      hint: 'a checkpoint holds only the trained tensors; restore the base model folder the run was trained on',
    });
  }
  const method = c.finetuning_type;
  if (method === 'prefix') {
    throw new LoomError('NOT_IMPLEMENTED', 'a prefix-tuning checkpoint cannot be run as a model', {
      file: dir,
      hint: 'finish (or --resume) the run and load its PEFT adapter on top of the base model with PEFT',
    });
  }
  const folder = openModelFolder(baseDir);
  const config = folder.config;
  const generationConfig = folder.generationConfig;
  const weights = loadWeights(folder);
  folder.close();
  if (method === 'lora' || method === 'qlora') {
    const named = new Map<string, Float32Named>([...weights].map(([n, t]) => [n, { name: n, ...t }]));
    mergeLoraInto(named, ck.params, loraOptions(c).scale);
    for (const [n, t] of named) weights.set(n, { dtype: 'float32', dims: t.dims, data: t.data });
  } else {
    for (const t of ck.params) {
      const base = weights.get(t.name);
      if (!base || base.dims.join() !== t.dims.join()) {
        throw new LoomError('MODEL_SHAPE', `checkpoint tensor ${t.name} [${t.dims}] does not fit the base model`, {
          file: join(dir, 'trainable.safetensors'),
          hint: `the base model ${baseDir} changed since the run; restore the one it was trained on`,
        });
      }
      weights.set(t.name, { dtype: 'float32', dims: t.dims, data: t.data });
    }
  }
  return { config, weights, baseDir, generationConfig, runDir, method, step: ck.state.step };
}
