/**
 * Model folders in the Hugging Face layout: config.json, model.safetensors (or shards + index), tokenizer.json,
 * tokenizer_config.json, generation_config.json.
 *
 * API (used by models/llama.ts, train/, export/, CLI):
 *   openModelFolder(dir)               -> ModelFolder { dir, config, weights (lazy SafetensorsReader), files, close() }
 *   loadWeights(folder | dir, { names? }) -> Map<name, Float32Tensor>  all weights as float32, checked against the
 *                                        config (missing / unexpected / wrong shape -> LoomError MODEL_INVALID;
 *                                        a tied model may omit lm_head.weight; an untied one may not)
 *   newModel(config, seed?)            -> Map<name, Float32Tensor>  random init like HF (normal(0, initializer_range)
 *                                        for linear/embedding, zeros for biases, ones for norms), seeded
 *   newModelLazy(config, seed?)        -> the same values as lazy tensors for saveModelFolder (bounded memory)
 *   saveModelFolder(dir, { config, weights, dtype?, maxShardBytes?, tokenizerFiles?, generationConfig? })
 *   createModelFolder(dir, { preset | config, seed?, dtype?, overrides?, tokenizerFrom? })  `loom model new`
 *   modelInfo(dir)                     -> ModelInfo (what `loom model info` prints)
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { Mulberry32 } from '../core/rng.ts';
import { tinyTokenizerFiles } from '../tokenizer/tiny.ts';
import {
  type LlamaConfig,
  memoryEstimate,
  type ParameterCount,
  type ParamSpec,
  parameterCount,
  parameterShapes,
  presetConfig,
  readHfConfig,
  toHfConfig,
} from './config.ts';
import { type Float32Tensor, type LazyTensorData, SafetensorsReader, writeSharded } from './safetensors.ts';

export interface ModelFolder {
  dir: string;
  config: LlamaConfig;
  weights: SafetensorsReader;
  /** Which of the usual files exist. */
  files: { tokenizer: boolean; tokenizerConfig: boolean; generationConfig: boolean };
  generationConfig: Record<string, unknown>;
  close(): void;
}

export function openModelFolder(dir: string): ModelFolder {
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) {
    throw new LoomError('MODEL_INVALID', `no config.json in ${dir}`, {
      file: dir,
      hint: 'a model folder holds config.json and model.safetensors; create one with `loom model new <dir> --preset tiny`',
    });
  }
  const config = readHfConfig(cfgPath);
  const weights = SafetensorsReader.open(dir);
  const genPath = join(dir, 'generation_config.json');
  let generationConfig: Record<string, unknown> = {};
  if (existsSync(genPath)) {
    try {
      generationConfig = JSON.parse(readFileSync(genPath, 'utf8'));
    } catch (e) {
      throw new LoomError('MODEL_INVALID', `generation_config.json is not valid JSON: ${(e as Error).message}`, {
        file: genPath,
      });
    }
  }
  return {
    dir,
    config,
    weights,
    files: {
      tokenizer: existsSync(join(dir, 'tokenizer.json')),
      tokenizerConfig: existsSync(join(dir, 'tokenizer_config.json')),
      generationConfig: existsSync(genPath),
    },
    generationConfig,
    close: () => weights.close(),
  };
}

/** Checks the stored tensors against the config: names, shapes, float dtypes. */
export function validateWeights(folder: ModelFolder): void {
  const specs = parameterShapes(folder.config);
  const expected = new Set(specs.map((s) => s.name));
  for (const s of specs) {
    if (!folder.weights.has(s.name)) {
      throw new LoomError('MODEL_INVALID', `weight ${s.name} is missing`, {
        file: folder.dir,
        field: s.name,
        hint: 'the checkpoint does not match config.json (architecture, layer count or tie_word_embeddings)',
      });
    }
    const info = folder.weights.info(s.name);
    if (info.shape.join(',') !== s.shape.join(',')) {
      throw new LoomError(
        'MODEL_INVALID',
        `weight ${s.name} has shape [${info.shape}] but config.json implies [${s.shape}]`,
        { file: info.file, field: s.name },
      );
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
      throw new LoomError('MODEL_INVALID', `weight ${s.name} has dtype ${info.dtype}; expected a float type`, {
        file: info.file,
        field: s.name,
      });
    }
  }
  for (const name of folder.weights.names()) {
    // Tied checkpoints sometimes still carry lm_head.weight; rotary inv_freq buffers appear in old exports.
    if (expected.has(name) || name === 'lm_head.weight' || name.endsWith('rotary_emb.inv_freq')) continue;
    throw new LoomError(
      'MODEL_INVALID',
      `unexpected weight ${name} (not part of a ${folder.config.architecture} model)`,
      {
        file: folder.weights.info(name).file,
        field: name,
      },
    );
  }
}

/** Every parameter as float32, in HF order, after validation. */
export function loadWeights(
  folderOrDir: ModelFolder | string,
  opts: { names?: string[] } = {},
): Map<string, Float32Tensor> {
  const folder = typeof folderOrDir === 'string' ? openModelFolder(folderOrDir) : folderOrDir;
  try {
    validateWeights(folder);
    const out = new Map<string, Float32Tensor>();
    const want = opts.names ? new Set(opts.names) : undefined;
    for (const s of parameterShapes(folder.config)) {
      if (want && !want.has(s.name)) continue;
      out.set(s.name, folder.weights.readFloat32(s.name));
    }
    return out;
  } finally {
    if (typeof folderOrDir === 'string') folder.close();
  }
}

/** One parameter's initial values (HF `_init_weights`); one PRNG stream per tensor index. */
function initTensor(config: LlamaConfig, spec: ParamSpec, idx: number, seed: number): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  if (spec.kind === 'norm') data.fill(1);
  else if (spec.kind !== 'bias') {
    // Seeded from the run seed and the tensor's index, so adding a tensor kind later does not change the others.
    const rng = new Mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(idx + 1, 0x85ebca6b)) >>> 0);
    const std = config.initializerRange;
    for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
  }
  return data;
}

/** Random weights like HF's `_init_weights`: normal(0, initializer_range) for matrices, 0 for biases, 1 for norms. */
export function newModel(config: LlamaConfig, seed = 0): Map<string, Float32Tensor> {
  const out = new Map<string, Float32Tensor>();
  parameterShapes(config).forEach((s, idx) => {
    out.set(s.name, { dtype: 'float32', dims: [...s.shape], data: initTensor(config, s, idx, seed) });
  });
  return out;
}

/** The same weights as newModel, each made only when written: a 7B-shaped folder needs one tensor of memory. */
export function newModelLazy(config: LlamaConfig, seed = 0): [string, LazyTensorData][] {
  return parameterShapes(config).map((s, idx) => [
    s.name,
    { dtype: 'F32', shape: [...s.shape], load: () => initTensor(config, s, idx, seed) },
  ]);
}

export type SaveDType = 'float32' | 'float16' | 'bfloat16';
const ST_DTYPE: Record<SaveDType, 'F32' | 'F16' | 'BF16'> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

export interface SaveOptions {
  config: LlamaConfig;
  weights: Map<string, Float32Tensor> | Iterable<[string, Float32Tensor | LazyTensorData]>;
  dtype?: SaveDType;
  maxShardBytes?: number;
  /** File name -> content (tokenizer.json, tokenizer_config.json, ...). */
  tokenizerFiles?: Record<string, string>;
  /** Copy tokenizer files from this folder (ignored for files given in tokenizerFiles). */
  tokenizerFrom?: string;
  generationConfig?: Record<string, unknown>;
}

const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
];

export function saveModelFolder(dir: string, opts: SaveOptions): string[] {
  mkdirSync(dir, { recursive: true });
  const dtype = opts.dtype ?? 'float32';
  const cfg: LlamaConfig = { ...opts.config, torchDtype: dtype };
  const written: string[] = [];
  const names = new Set(parameterShapes(cfg).map((p) => p.name));
  const list = [...opts.weights].filter(([n]) => names.has(n));
  if (list.length !== names.size) {
    const have = new Set(list.map(([n]) => n));
    const missing = [...names].filter((n) => !have.has(n));
    throw new LoomError('MODEL_INVALID', `cannot save: ${missing.length} weights missing (first: ${missing[0]})`, {
      file: dir,
    });
  }
  written.push(...writeSharded(dir, list, { dtype: ST_DTYPE[dtype], maxShardBytes: opts.maxShardBytes }));
  writeJsonAtomic(join(dir, 'config.json'), toHfConfig(cfg));
  written.push('config.json');
  for (const [name, content] of Object.entries(opts.tokenizerFiles ?? {})) {
    writeFileAtomic(join(dir, name), content);
    written.push(name);
  }
  if (opts.tokenizerFrom) {
    for (const name of TOKENIZER_FILES) {
      const src = join(opts.tokenizerFrom, name);
      if (opts.tokenizerFiles?.[name] !== undefined || !existsSync(src) || join(dir, name) === src) continue;
      copyFileSync(src, join(dir, name));
      written.push(name);
    }
  }
  if (opts.generationConfig || !existsSync(join(dir, 'generation_config.json'))) {
    const gen = opts.generationConfig ?? {
      bos_token_id: cfg.bosTokenId,
      eos_token_id:
        cfg.eosTokenId.length === 0 ? null : cfg.eosTokenId.length === 1 ? cfg.eosTokenId[0] : cfg.eosTokenId,
      pad_token_id: cfg.padTokenId,
    };
    writeJsonAtomic(join(dir, 'generation_config.json'), gen);
    written.push('generation_config.json');
  }
  return written;
}

export interface CreateOptions {
  preset?: string;
  config?: LlamaConfig;
  /** HF config.json keys applied over the preset (e.g. { num_hidden_layers: 4 }). */
  overrides?: Record<string, unknown>;
  seed?: number;
  dtype?: SaveDType;
  /** Copy tokenizer.json / tokenizer_config.json / special_tokens_map.json / generation_config.json from this
   * folder instead of shipping the tiny tokenizer. */
  tokenizerFrom?: string;
}

/** `loom model new`: random weights + config + the shipped tiny tokenizer (or another folder's tokenizer). */
export function createModelFolder(dir: string, opts: CreateOptions): { config: LlamaConfig; files: string[] } {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new LoomError('OUTPUT_WRITE', `${dir} exists and is not empty`, { file: dir, hint: 'choose a new folder' });
  }
  const config = opts.config ?? presetConfig(opts.preset ?? 'tiny', opts.overrides);
  if (opts.tokenizerFrom && !existsSync(join(opts.tokenizerFrom, 'tokenizer.json'))) {
    throw new LoomError('TOKENIZER', `no tokenizer.json in ${opts.tokenizerFrom}`, {
      file: opts.tokenizerFrom,
      field: 'tokenizer',
      hint: 'name a model folder that has tokenizer.json (e.g. one fetched with `loom pull`)',
    });
  }
  const files = saveModelFolder(dir, {
    config,
    weights: newModelLazy(config, opts.seed ?? 0),
    dtype: opts.dtype,
    tokenizerFiles: opts.tokenizerFrom ? undefined : tinyTokenizerFiles(),
    tokenizerFrom: opts.tokenizerFrom,
  });
  return { config, files };
}

export interface ModelInfo {
  dir: string;
  architecture: string;
  hfClass: string;
  shape: Pick<
    LlamaConfig,
    | 'vocabSize'
    | 'hiddenSize'
    | 'intermediateSize'
    | 'numLayers'
    | 'numHeads'
    | 'numKvHeads'
    | 'headDim'
    | 'maxPositionEmbeddings'
  >;
  features: {
    qkvBias: boolean;
    qkNorm: boolean;
    tiedEmbeddings: boolean;
    ropeScaling: string | null;
    slidingWindow: number | null;
  };
  ropeTheta: number;
  parameters: ParameterCount;
  storage: { dtypes: Record<string, number>; bytes: number; files: string[] };
  memory: {
    weightsBytesFp32: number;
    weightsBytesFp16: number;
    kvBytesPerTokenFp32: number;
    contextLength: number;
    kvCacheBytesFp32: number;
  };
  tokenizer: boolean;
}

export function modelInfo(dir: string): ModelInfo {
  const f = openModelFolder(dir);
  try {
    const c = f.config;
    const dtypes: Record<string, number> = {};
    for (const n of f.weights.names()) {
      const d = f.weights.info(n).dtype;
      dtypes[d] = (dtypes[d] ?? 0) + 1;
    }
    const ctx = Math.min(c.maxPositionEmbeddings, 4096);
    const m32 = memoryEstimate(c, { dtype: 'float32', contextLength: ctx });
    return {
      dir,
      architecture: c.architecture,
      hfClass: String((toHfConfig(c).architectures as string[])[0]),
      shape: {
        vocabSize: c.vocabSize,
        hiddenSize: c.hiddenSize,
        intermediateSize: c.intermediateSize,
        numLayers: c.numLayers,
        numHeads: c.numHeads,
        numKvHeads: c.numKvHeads,
        headDim: c.headDim,
        maxPositionEmbeddings: c.maxPositionEmbeddings,
      },
      features: {
        qkvBias: c.qkvBias,
        qkNorm: c.qkNorm,
        tiedEmbeddings: c.tieWordEmbeddings,
        ropeScaling: c.ropeScaling?.type ?? null,
        slidingWindow: c.slidingWindow,
      },
      ropeTheta: c.ropeTheta,
      parameters: parameterCount(c),
      storage: { dtypes, bytes: f.weights.dataBytes(), files: f.weights.files.map((p) => basename(p)) },
      memory: {
        weightsBytesFp32: m32.weightsBytes,
        weightsBytesFp16: memoryEstimate(c, { dtype: 'float16' }).weightsBytes,
        kvBytesPerTokenFp32: m32.kvBytesPerToken,
        contextLength: ctx,
        kvCacheBytesFp32: m32.kvCacheBytes,
      },
      tokenizer: f.files.tokenizer,
    };
  } finally {
    f.close();
  }
}

/**
 * Fast model-folder fingerprint (lineage, registry): config.json plus each safetensors header and size
 * (hashing every byte of a 10 GB model is minutes; safetensors files under 64 MB are hashed whole).
 */
export function folderFingerprint(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (f === 'config.json') h.update(readFileSync(p));
    if (f.endsWith('.safetensors')) {
      const buf = readFileSync(p);
      const hl = Number(buf.readBigUInt64LE(0));
      h.update(f)
        .update(buf.subarray(0, 8 + hl))
        .update(String(statSync(p).size));
      if (buf.length < 64 * 1024 * 1024) h.update(buf);
    }
  }
  return h.digest('hex');
}
