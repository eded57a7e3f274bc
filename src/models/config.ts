/**
 * Llama-family model configuration, read from (and written back to) Hugging Face `config.json`.
 *
 * API (used by models/llama.ts, folder.ts, train/, export/):
 *   parseHfConfig(json, file?)      -> LlamaConfig      (validates with zod; LoomError('MODEL_INVALID') naming the key)
 *   readHfConfig(path)              -> LlamaConfig      (reads and parses a config.json file)
 *   toHfConfig(cfg)                 -> object           (config.json content; keeps unknown keys from the source)
 *   presetConfig(name, overrides?)  -> LlamaConfig      (shapes: see PRESETS / presetNames())
 *   parameterShapes(cfg)            -> ParamSpec[]      (HF names and shapes in HF order, e.g. model.layers.0.self_attn.q_proj.weight)
 *   parameterCount(cfg)             -> { total, embedding, perLayer, nonEmbedding }
 *   memoryEstimate(cfg, opts)       -> bytes for weights (+ KV cache for a context length)
 *   ropeInvFreq(cfg)                -> Float32Array [headDim/2], in float32 step by step as transformers computes it
 *                                      (default, 'linear' and 'llama3' scaling)
 *   ropeCosSin(cfg, positions | n)  -> { cos, sin } Float32Array [T, headDim] in HF rotate_half layout (cat(freqs, freqs))
 *
 * Field names are camelCase; `hf` keeps the original JSON so that saving a loaded model loses nothing.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { LoomError } from '../core/errors.ts';

export type Architecture = 'llama' | 'qwen2' | 'qwen3' | 'mistral';

export type RopeScaling =
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  | { type: 'linear'; factor: number };

export interface LlamaConfig {
  /** HF `model_type`; decides defaults (qkv bias for qwen2, q/k norm for qwen3). */
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Per-head size; Qwen3 may set it so that numHeads * headDim != hiddenSize. */
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Bias on q/k/v projections (Qwen2/2.5 always; Llama when attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama's and Qwen3's `attention_bias` apply to o_proj too; Qwen2 never). */
  oBias: boolean;
  /** Bias on gate/up/down (Llama `mlp_bias`). */
  mlpBias: boolean;
  /** Qwen3: RMSNorm over head_dim on q and k (weights [headDim]) before rope. */
  qkNorm: boolean;
  /**
   * Sliding-window attention width, null when disabled. The graph (llama.ts) applies it for Mistral; Qwen2/Qwen3's
   * per-layer window (use_sliding_window + max_window_layers) is parsed but not applied.
   */
  slidingWindow: number | null;
  tieWordEmbeddings: boolean;
  hiddenAct: 'silu';
  initializerRange: number;
  bosTokenId: number | null;
  eosTokenId: number[];
  padTokenId: number | null;
  /** `torch_dtype` of the stored weights (informational). */
  torchDtype: string;
  /** Original config.json (or the one toHfConfig produced), kept for round trips. */
  hf: Record<string, unknown>;
  /**
   * Sequence classification (`…ForSequenceClassification`, `id2label`): class names by id. The head is
   * `score.weight` [labels, hidden] on the last real token's hidden state, instead of lm_head.
   */
  labels?: string[];
}

export interface ParamSpec {
  name: string;
  shape: number[];
  /** What the weight is, for init and for LoRA targeting. */
  kind: 'embedding' | 'linear' | 'bias' | 'norm' | 'lm_head';
  /** Layer index, or -1 for global tensors. */
  layer: number;
}

const tokenId = z.union([z.number().int(), z.null()]).optional();

const ropeScalingSchema = z
  .object({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().optional(),
    high_freq_factor: z.number().optional(),
    original_max_position_embeddings: z.number().int().optional(),
  })
  .passthrough()
  .nullable()
  .optional();

const hfSchema = z
  .object({
    model_type: z.string().optional(),
    architectures: z.array(z.string()).optional(),
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive().nullable().optional(),
    head_dim: z.number().int().positive().nullable().optional(),
    max_position_embeddings: z.number().int().positive().optional(),
    rms_norm_eps: z.number().positive().optional(),
    rope_theta: z.number().positive().optional(),
    rope_scaling: ropeScalingSchema,
    attention_bias: z.boolean().optional(),
    mlp_bias: z.boolean().optional(),
    sliding_window: z.number().int().nullable().optional(),
    use_sliding_window: z.boolean().optional(),
    tie_word_embeddings: z.boolean().optional(),
    hidden_act: z.string().optional(),
    initializer_range: z.number().optional(),
    bos_token_id: tokenId,
    eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
    pad_token_id: tokenId,
    torch_dtype: z.string().nullable().optional(),
  })
  .passthrough();

const ARCH_BY_MODEL_TYPE: Record<string, Architecture> = {
  llama: 'llama',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  mistral: 'mistral',
};

const HF_CLASS: Record<Architecture, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  mistral: 'MistralForCausalLM',
};

function invalid(message: string, file?: string, field?: string, hint?: string): LoomError {
  return new LoomError('MODEL_INVALID', message, { file, field, hint });
}

function architectureOf(raw: z.infer<typeof hfSchema>, file?: string): Architecture {
  let type = raw.model_type;
  if (!type && raw.architectures?.[0]) {
    const cls = raw.architectures[0].replace('ForSequenceClassification', 'ForCausalLM');
    type = Object.entries(HF_CLASS).find(([, c]) => c === cls)?.[0];
  }
  const arch = type ? ARCH_BY_MODEL_TYPE[type] : undefined;
  if (!arch) {
    throw invalid(
      `unsupported model_type '${type ?? '(missing)'}'`,
      file,
      'model_type',
      'supported: llama, qwen2, qwen3, mistral',
    );
  }
  return arch;
}

function parseRopeScaling(rs: z.infer<typeof ropeScalingSchema>, maxPos: number, file?: string): RopeScaling | null {
  if (!rs) return null;
  const type = rs.rope_type ?? rs.type ?? 'default';
  if (type === 'default') return null;
  if (type === 'llama3') {
    return {
      type: 'llama3',
      factor: rs.factor ?? 8,
      lowFreqFactor: rs.low_freq_factor ?? 1,
      highFreqFactor: rs.high_freq_factor ?? 4,
      originalMaxPositionEmbeddings: rs.original_max_position_embeddings ?? Math.min(8192, maxPos),
    };
  }
  if (type === 'linear') {
    if (!rs.factor) throw invalid('rope_scaling type linear needs factor', file, 'rope_scaling.factor');
    return { type: 'linear', factor: rs.factor };
  }
  throw new LoomError('NOT_IMPLEMENTED', `rope_scaling type '${type}' is not supported`, {
    file,
    field: 'rope_scaling',
    hint: 'supported: default, linear, llama3 (yarn/dynamic/longrope are not)',
  });
}

/** Validates an HF config.json object and normalises it; errors name the file and key. */
export function parseHfConfig(json: unknown, file?: string): LlamaConfig {
  const r = hfSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue?.path.join('.') ?? '';
    throw invalid(`config.json: ${field || '(root)'}: ${issue?.message ?? 'invalid'}`, file, field);
  }
  const raw = r.data;
  const arch = architectureOf(raw, file);
  const numHeads = raw.num_attention_heads;
  const numKvHeads = raw.num_key_value_heads ?? numHeads;
  if (numHeads % numKvHeads !== 0) {
    throw invalid(
      `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
      file,
      'num_key_value_heads',
    );
  }
  let headDim = raw.head_dim ?? undefined;
  if (headDim === undefined) {
    if (raw.hidden_size % numHeads !== 0) {
      throw invalid(
        `hidden_size ${raw.hidden_size} is not divisible by num_attention_heads ${numHeads}`,
        file,
        'head_dim',
      );
    }
    headDim = raw.hidden_size / numHeads;
  }
  if (headDim % 2 !== 0) throw invalid(`head_dim ${headDim} must be even for rope`, file, 'head_dim');
  const maxPos = raw.max_position_embeddings ?? 2048;
  const attentionBias = raw.attention_bias ?? false;
  // Qwen2's sliding window is only active with use_sliding_window; Mistral's whenever set.
  let slidingWindow: number | null = raw.sliding_window ?? null;
  if ((arch === 'qwen2' || arch === 'qwen3') && !raw.use_sliding_window) slidingWindow = null;
  const eos = raw.eos_token_id;
  const labels = classLabels(raw, file);
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') throw invalid(`hidden_act '${act}' is not supported (only silu)`, file, 'hidden_act');
  return {
    architecture: arch,
    vocabSize: raw.vocab_size,
    hiddenSize: raw.hidden_size,
    intermediateSize: raw.intermediate_size,
    numLayers: raw.num_hidden_layers,
    numHeads,
    numKvHeads,
    headDim,
    maxPositionEmbeddings: maxPos,
    rmsNormEps: raw.rms_norm_eps ?? 1e-6,
    ropeTheta: raw.rope_theta ?? 10000,
    ropeScaling: parseRopeScaling(raw.rope_scaling, maxPos, file),
    qkvBias: arch === 'qwen2' ? true : attentionBias,
    oBias: arch === 'llama' || arch === 'qwen3' ? attentionBias : false,
    mlpBias: arch === 'llama' ? (raw.mlp_bias ?? false) : false,
    qkNorm: arch === 'qwen3',
    slidingWindow,
    tieWordEmbeddings: raw.tie_word_embeddings ?? false,
    hiddenAct: 'silu',
    initializerRange: raw.initializer_range ?? 0.02,
    bosTokenId: raw.bos_token_id ?? null,
    eosTokenId: eos === null || eos === undefined ? [] : Array.isArray(eos) ? eos : [eos],
    padTokenId: raw.pad_token_id ?? null,
    torchDtype: raw.torch_dtype ?? 'float32',
    hf: json as Record<string, unknown>,
    ...(labels ? { labels } : {}),
  };
}

/** id2label of a sequence-classification config, in id order (HF writes keys as strings "0", "1", …). */
function classLabels(raw: z.infer<typeof hfSchema>, file?: string): string[] | undefined {
  if (!raw.architectures?.[0]?.endsWith('ForSequenceClassification')) return undefined;
  const m = raw.id2label as Record<string, unknown> | undefined;
  const n = m ? Object.keys(m).length : Number(raw.num_labels ?? 2);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = m ? m[String(i)] : `LABEL_${i}`;
    if (typeof v !== 'string') throw invalid(`id2label has no string entry for id ${i}`, file, 'id2label');
    out.push(v);
  }
  return out;
}

export function readHfConfig(path: string): LlamaConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new LoomError('INPUT_NOT_FOUND', `cannot read ${path}: ${(e as Error).message}`, { file: path, cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw invalid(`config.json is not valid JSON: ${(e as Error).message}`, path);
  }
  return parseHfConfig(json, path);
}

/** config.json content for a config; unknown keys of the original file are preserved. */
export function toHfConfig(cfg: LlamaConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...cfg.hf };
  const rs = cfg.ropeScaling;
  Object.assign(out, {
    architectures: [
      cfg.labels
        ? HF_CLASS[cfg.architecture].replace('ForCausalLM', 'ForSequenceClassification')
        : HF_CLASS[cfg.architecture],
    ],
    model_type: cfg.architecture,
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    max_position_embeddings: cfg.maxPositionEmbeddings,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    rope_scaling:
      rs === null
        ? null
        : rs.type === 'llama3'
          ? {
              rope_type: 'llama3',
              factor: rs.factor,
              low_freq_factor: rs.lowFreqFactor,
              high_freq_factor: rs.highFreqFactor,
              original_max_position_embeddings: rs.originalMaxPositionEmbeddings,
            }
          : { rope_type: 'linear', factor: rs.factor },
    tie_word_embeddings: cfg.tieWordEmbeddings,
    hidden_act: cfg.hiddenAct,
    initializer_range: cfg.initializerRange,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenId.length === 0 ? null : cfg.eosTokenId.length === 1 ? cfg.eosTokenId[0] : cfg.eosTokenId,
    pad_token_id: cfg.padTokenId,
    torch_dtype: cfg.torchDtype,
  });
  if (cfg.architecture === 'llama') {
    out.attention_bias = cfg.qkvBias || cfg.oBias;
    out.mlp_bias = cfg.mlpBias;
  } else if (cfg.architecture === 'qwen3') {
    out.attention_bias = cfg.qkvBias;
  }
  if (cfg.labels) {
    out.id2label = Object.fromEntries(cfg.labels.map((l, i) => [String(i), l]));
    out.label2id = Object.fromEntries(cfg.labels.map((l, i) => [l, i]));
    out.problem_type = 'single_label_classification';
  } else {
    delete out.id2label;
    delete out.label2id;
    delete out.problem_type;
  }
  if (cfg.architecture === 'mistral') out.sliding_window = cfg.slidingWindow;
  if (cfg.architecture === 'qwen2' || cfg.architecture === 'qwen3') {
    out.use_sliding_window = cfg.slidingWindow !== null;
    out.sliding_window = cfg.slidingWindow ?? (out.sliding_window as number | undefined) ?? null;
  }
  return out;
}

/** Shapes of well-known models (and tiny ones for tests). Values are HF config.json keys. */
export const PRESETS: Record<string, Record<string, unknown>> = {
  // Matches the tokenizer shipped with Loom (src/tokenizer/assets/tiny): tests, demos, quickstart.
  tiny: {
    model_type: 'llama',
    vocab_size: 512,
    hidden_size: 64,
    intermediate_size: 176,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: true,
    bos_token_id: null,
    eos_token_id: 2,
    pad_token_id: 0,
  },
  'llama3-tiny': {
    model_type: 'llama',
    vocab_size: 512,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    },
    tie_word_embeddings: false,
    eos_token_id: 2,
  },
  'qwen2-tiny': {
    model_type: 'qwen2',
    vocab_size: 512,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
    eos_token_id: 2,
  },
  'qwen3-tiny': {
    model_type: 'qwen3',
    vocab_size: 512,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
    eos_token_id: 2,
  },
  'mistral-tiny': {
    model_type: 'mistral',
    vocab_size: 512,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    sliding_window: 256,
    tie_word_embeddings: false,
    eos_token_id: 2,
  },
  'smollm2-135m': {
    model_type: 'llama',
    vocab_size: 49152,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 2,
    initializer_range: 0.041666666666666664,
  },
  'smollm2-360m': {
    model_type: 'llama',
    vocab_size: 49152,
    hidden_size: 960,
    intermediate_size: 2560,
    num_hidden_layers: 32,
    num_attention_heads: 15,
    num_key_value_heads: 5,
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
  },
  'qwen2.5-0.5b': {
    model_type: 'qwen2',
    vocab_size: 151936,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    sliding_window: 32768,
    use_sliding_window: false,
    tie_word_embeddings: true,
    bos_token_id: 151643,
    eos_token_id: 151645,
  },
  'qwen3-0.6b': {
    model_type: 'qwen3',
    vocab_size: 151936,
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    max_position_embeddings: 40960,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
    bos_token_id: 151643,
    eos_token_id: 151645,
  },
  'llama3.2-1b': {
    model_type: 'llama',
    vocab_size: 128256,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 64,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
    tie_word_embeddings: true,
    bos_token_id: 128000,
    eos_token_id: [128001, 128008, 128009],
  },
  'tinyllama-1.1b': {
    model_type: 'llama',
    vocab_size: 32000,
    hidden_size: 2048,
    intermediate_size: 5632,
    num_hidden_layers: 22,
    num_attention_heads: 32,
    num_key_value_heads: 4,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
  },
  'mistral-7b': {
    model_type: 'mistral',
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    sliding_window: 4096,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** A preset's config, with HF-key overrides applied (e.g. `{ num_hidden_layers: 4 }`). */
export function presetConfig(name: string, overrides: Record<string, unknown> = {}): LlamaConfig {
  const base = PRESETS[name];
  if (!base) {
    throw new LoomError('CONFIG_INVALID', `unknown model preset '${name}'`, {
      field: 'preset',
      hint: `one of: ${presetNames().join(', ')}`,
    });
  }
  return parseHfConfig({ ...structuredClone(base), ...overrides }, `preset:${name}`);
}

/** Every parameter with its HF name and shape, in the order HF's state_dict lists them. */
export function parameterShapes(cfg: LlamaConfig): ParamSpec[] {
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const out: ParamSpec[] = [
    { name: 'model.embed_tokens.weight', shape: [cfg.vocabSize, H], kind: 'embedding', layer: -1 },
  ];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    const lin = (name: string, o: number, inp: number, bias: boolean): void => {
      out.push({ name: `${p}.${name}.weight`, shape: [o, inp], kind: 'linear', layer: i });
      if (bias) out.push({ name: `${p}.${name}.bias`, shape: [o], kind: 'bias', layer: i });
    };
    lin('self_attn.q_proj', qDim, H, cfg.qkvBias);
    lin('self_attn.k_proj', kvDim, H, cfg.qkvBias);
    lin('self_attn.v_proj', kvDim, H, cfg.qkvBias);
    lin('self_attn.o_proj', H, qDim, cfg.oBias);
    if (cfg.qkNorm) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, shape: [cfg.headDim], kind: 'norm', layer: i });
      out.push({ name: `${p}.self_attn.k_norm.weight`, shape: [cfg.headDim], kind: 'norm', layer: i });
    }
    lin('mlp.gate_proj', I, H, cfg.mlpBias);
    lin('mlp.up_proj', I, H, cfg.mlpBias);
    lin('mlp.down_proj', H, I, cfg.mlpBias);
    out.push({ name: `${p}.input_layernorm.weight`, shape: [H], kind: 'norm', layer: i });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [H], kind: 'norm', layer: i });
  }
  out.push({ name: 'model.norm.weight', shape: [H], kind: 'norm', layer: -1 });
  if (cfg.labels) out.push({ name: 'score.weight', shape: [cfg.labels.length, H], kind: 'linear', layer: -1 });
  else if (!cfg.tieWordEmbeddings)
    out.push({ name: 'lm_head.weight', shape: [cfg.vocabSize, H], kind: 'lm_head', layer: -1 });
  return out;
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export interface ParameterCount {
  total: number;
  /** embed_tokens (+ lm_head when untied). */
  embedding: number;
  nonEmbedding: number;
  perLayer: number;
}

export function parameterCount(cfg: LlamaConfig): ParameterCount {
  let total = 0;
  let embedding = 0;
  let layer0 = 0;
  for (const p of parameterShapes(cfg)) {
    const n = numel(p.shape);
    total += n;
    if (p.kind === 'embedding' || p.kind === 'lm_head') embedding += n;
    if (p.layer === 0) layer0 += n;
  }
  return { total, embedding, nonEmbedding: total - embedding, perLayer: layer0 };
}

export type WeightDType = 'float32' | 'float16' | 'bfloat16';
const BYTES: Record<WeightDType, number> = { float32: 4, float16: 2, bfloat16: 2 };

export interface MemoryEstimate {
  weightsBytes: number;
  /** KV cache for `contextLength` tokens x `batch`, in the KV dtype. */
  kvCacheBytes: number;
  kvBytesPerToken: number;
  totalBytes: number;
}

/** Rough inference memory: weights + KV cache (activations excluded; they are small next to these for decode). */
export function memoryEstimate(
  cfg: LlamaConfig,
  opts: { dtype?: WeightDType; kvDtype?: WeightDType; contextLength?: number; batch?: number } = {},
): MemoryEstimate {
  const wb = BYTES[opts.dtype ?? 'float32'];
  const kb = BYTES[opts.kvDtype ?? 'float32'];
  const ctx = opts.contextLength ?? Math.min(cfg.maxPositionEmbeddings, 4096);
  const batch = opts.batch ?? 1;
  const weightsBytes = parameterCount(cfg).total * wb;
  const kvBytesPerToken = 2 * cfg.numLayers * cfg.numKvHeads * cfg.headDim * kb;
  const kvCacheBytes = kvBytesPerToken * ctx * batch;
  return { weightsBytes, kvCacheBytes, kvBytesPerToken, totalBytes: weightsBytes + kvCacheBytes };
}

/**
 * Rope inverse frequencies exactly as transformers computes them in float32 (every operation rounded to float32):
 * 1 / theta^(2i/d); 'linear' divides by factor; 'llama3' divides low frequencies by factor, keeps high ones and
 * blends the band in between. Tables built from these match PyTorch's to the last bit or so even at long
 * positions where angles reach 1e4 radians (a float64 table would drift from HF, and from how the weights were
 * trained, by up to ~1e-3 there).
 */
export function ropeInvFreq(cfg: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const f = Math.fround;
  const d = cfg.headDim;
  const half = d / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(f(cfg.ropeTheta) ** f((2 * i) / d)));
  const rs = cfg.ropeScaling;
  if (rs?.type === 'linear') for (let i = 0; i < half; i++) inv[i] = f((inv[i] as number) / f(rs.factor));
  if (rs?.type === 'llama3') {
    const old = f(rs.originalMaxPositionEmbeddings);
    const lowWl = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
    const highWl = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const x = inv[i] as number;
      const wl = f(f(2 * Math.PI) / x);
      const scaled = wl > lowWl ? f(x / f(rs.factor)) : x;
      const smooth = f(f(f(old / wl) - f(rs.lowFreqFactor)) / f(rs.highFreqFactor - rs.lowFreqFactor));
      const smoothed = f(f(f(f(1 - smooth) * scaled) / f(rs.factor)) + f(smooth * scaled));
      inv[i] = !(wl < highWl) && !(wl > lowWl) ? smoothed : scaled;
    }
  }
  return inv;
}

/**
 * cos/sin tables [T, headDim] row-major, each row = cat(freqs, freqs) as HF's rotate_half expects, for the given
 * positions or (a number n) for positions 0..n-1. As in HF the angle position * inv_freq is a float32 value.
 */
export function ropeCosSin(
  cfg: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
  positions: ArrayLike<number> | number,
): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInvFreq(cfg);
  const d = cfg.headDim;
  const half = d / 2;
  const n = typeof positions === 'number' ? positions : positions.length;
  const cos = new Float32Array(n * d);
  const sin = new Float32Array(n * d);
  for (let t = 0; t < n; t++) {
    const pos = typeof positions === 'number' ? t : (positions[t] as number);
    for (let i = 0; i < half; i++) {
      const a = Math.fround(pos * (inv[i] as number));
      const c = Math.cos(a);
      const s = Math.sin(a);
      cos[t * d + i] = c;
      cos[t * d + i + half] = c;
      sin[t * d + i] = s;
      sin[t * d + i + half] = s;
    }
  }
  return { cos, sin };
}
