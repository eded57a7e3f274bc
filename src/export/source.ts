/**
 * What `loom export` reads: a model folder (HF layout) or a training run folder (lineage.json + adapter/, merged/
 * or model/). A LoRA run without a merged folder is merged here, in float64 accumulation, exactly as
 * `loom train --merge` does (models/peft.ts), so every export format starts from the same float32 weights.
 * A checkpoint folder (`<run>/checkpoints/step-N`) is verified against its manifest and applied to the run's base
 * model (train/checkpoint-model.ts).
 *
 * API:
 *   openExportSource(dir) -> ExportSource { config, weights, tokenizerDir, generationConfig, modelDir, run?, adapterDir? }
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LoomError } from '../core/errors.ts';
import type { LlamaConfig } from '../models/config.ts';
import { loadWeights, openModelFolder } from '../models/folder.ts';
import { adapterBaseDir, adapterScale, mergeLoraInto, readPeftAdapter } from '../models/peft.ts';
import type { Float32Named, Float32Tensor } from '../models/safetensors.ts';
import { isCheckpointDir, openCheckpointModel } from '../train/checkpoint-model.ts';

export interface RunInfo {
  dir: string;
  runId?: string;
  datasetHash?: string;
  baseModel?: string;
  baseModelHash?: string;
  configHash?: string;
}

export interface ExportSource {
  config: LlamaConfig;
  weights: Map<string, Float32Tensor>;
  /** Folder holding tokenizer.json / tokenizer_config.json (the model folder, or the run's base model). */
  tokenizerDir: string;
  generationConfig: Record<string, unknown>;
  /** The model folder the weights came from (the base model for an unmerged adapter run). */
  modelDir: string;
  run?: RunInfo;
  /** Set when the source is a run with a PEFT adapter (the `peft` format copies it). */
  adapterDir?: string;
}

function readRun(dir: string): RunInfo | undefined {
  const p = join(dir, 'lineage.json');
  if (!existsSync(p)) return undefined;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new LoomError('INPUT_MALFORMED', `lineage.json is not valid JSON: ${(e as Error).message}`, { file: p });
  }
  const s = (k: string) => (typeof j[k] === 'string' ? (j[k] as string) : undefined);
  return {
    dir,
    runId: s('run_id'),
    datasetHash: s('dataset_hash'),
    baseModel: s('base_model'),
    baseModelHash: s('base_model_hash'),
    configHash: s('config_hash'),
  };
}

function fromModelFolder(modelDir: string, run?: RunInfo, adapterDir?: string): ExportSource {
  const folder = openModelFolder(modelDir);
  try {
    return {
      config: folder.config,
      weights: loadWeights(folder),
      tokenizerDir: modelDir,
      generationConfig: folder.generationConfig,
      modelDir,
      run,
      adapterDir,
    };
  } finally {
    folder.close();
  }
}

export function openExportSource(input: string): ExportSource {
  const dir = resolve(input);
  if (!existsSync(dir)) {
    throw new LoomError('INPUT_NOT_FOUND', `${input} does not exist`, {
      file: input,
      hint: 'give a model folder (config.json + model.safetensors) or a `loom train` output folder',
    });
  }
  if (existsSync(join(dir, 'config.json'))) return fromModelFolder(dir, readRun(dir));
  if (isCheckpointDir(dir)) {
    const ck = openCheckpointModel(dir);
    return {
      config: ck.config,
      weights: ck.weights,
      tokenizerDir: ck.baseDir,
      generationConfig: ck.generationConfig,
      modelDir: ck.baseDir,
      run: readRun(ck.runDir),
    };
  }
  const run = readRun(dir);
  const adapter = existsSync(join(dir, 'adapter', 'adapter_config.json')) ? join(dir, 'adapter') : undefined;
  for (const sub of ['merged', 'model']) {
    if (existsSync(join(dir, sub, 'config.json'))) return fromModelFolder(join(dir, sub), run, adapter);
  }
  if (adapter) {
    const base = adapterBaseDir(adapter, [run?.baseModel]);
    if (!base) {
      const cfg = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      const named = String(cfg.base_model_name_or_path ?? run?.baseModel ?? '(unnamed)');
      throw new LoomError('INPUT_NOT_FOUND', `the adapter's base model ${named} is not a model folder`, {
        file: join(adapter, 'adapter_config.json'),
        field: 'base_model_name_or_path',
        hint: 'export needs the base model the adapter was trained on; restore that folder (or `loom pull` a Hub id) or export the adapter with --format peft',
      });
    }
    const src = fromModelFolder(resolve(base), run, adapter);
    const a = readPeftAdapter(adapter, src.config);
    if (a.type !== 'LORA') {
      throw new LoomError('NOT_IMPLEMENTED', `a ${a.type} adapter cannot be merged into a model`, {
        file: adapter,
        hint: 'export it with --format peft and load it with PEFT on top of the base model',
      });
    }
    const named = new Map<string, Float32Named>(
      [...src.weights].map(([n, t]) => [n, { name: n, dims: t.dims, data: t.data }]),
    );
    mergeLoraInto(named, a.tensors, adapterScale(a.config));
    for (const [n, t] of named) src.weights.set(n, { dtype: 'float32', dims: t.dims, data: t.data });
    return src;
  }
  throw new LoomError('INPUT_FORMAT', `${input} is neither a model folder nor a training run`, {
    file: input,
    hint: 'a model folder has config.json; a run folder has lineage.json with adapter/, merged/ or model/; a checkpoint has state.json and trainable.safetensors',
  });
}
