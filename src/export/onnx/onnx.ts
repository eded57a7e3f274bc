/**
 * ONNX export in the transformers.js / Optimum layout, so `AutoModelForCausalLM.from_pretrained(dir)` loads it as
 * it is:
 *   DIR/config.json, generation_config.json, tokenizer.json, tokenizer_config.json (+ chat_template), …
 *   DIR/onnx/model.onnx             fp32, always written (the reference the quantised files are checked against)
 *   DIR/onnx/model_fp16.onnx        --dtype fp16: weight matrices stored as float16 (half the file), each behind a
 *                                   Cast to float32, so inputs, outputs, KV cache and math stay float32 (ORT's CPU
 *                                   kernels have no fast fp16 GEMM; the Cast of an initializer is folded at load)
 *   DIR/onnx/model_quantized.onnx   --dtype int8: MatMulNBits 8-bit weights, accuracy_level 4 (transformers.js 'q8')
 *   DIR/onnx/model_q4.onnx          --dtype int4: MatMulNBits 4-bit weights, accuracy_level 4 (transformers.js dtype 'q4')
 * In int8/int4 the embedding table is quantised too (com.microsoft.GatherBlockQuantized over MatMulNBits' blocks);
 * a tied LM head reads that same initializer, so the [vocab, hidden] table is stored once, as in a GGUF file.
 * Block scales are stored as float16 behind a Cast to float32 (folded by ORT at load). In int4 files the vocabulary
 * matrices (embedding table, LM head) are 8-bit, as llama.cpp keeps them at Q6_K in its Q4_0 files.
 * The graph is the one Loom's engine runs (models/llama.ts with the KV cache): inputs input_ids, attention_mask,
 * position_ids, past_key_values.{i}.key|value; outputs logits [B, T, V] and present.{i}.key|value — the names
 * transformers.js feeds and reads. Fused contrib ops (SimplifiedLayerNormalization, RotaryEmbedding,
 * SkipSimplifiedLayerNormalization) are the engine's numerically equivalent fusions.
 *
 * API:
 *   writeOnnx(src, outDir, dtype, template) -> files written (relative to outDir)
 *   ONNX_FILES: the onnx/ file name of each dtype; TRANSFORMERS_JS_DTYPE: the `dtype` to pass transformers.js
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../core/atomic.ts';
import { LoomError } from '../../core/errors.ts';
import { type HostTensor, toHalf, toOnnx } from '../../engine/index.ts';
import { parameterCount, toHfConfig } from '../../models/config.ts';
import { buildLlama, type WeightSource } from '../../models/llama.ts';
import type { ExportSource } from '../source.ts';

export type OnnxDtype = 'fp32' | 'fp16' | 'int8' | 'int4';

export const ONNX_FILES: Record<OnnxDtype, string> = {
  fp32: 'model.onnx',
  fp16: 'model_fp16.onnx',
  int8: 'model_quantized.onnx',
  int4: 'model_q4.onnx',
};

/** transformers.js `dtype` option that selects each file (its DEFAULT_DTYPE_SUFFIX_MAPPING). */
export const TRANSFORMERS_JS_DTYPE: Record<OnnxDtype, string> = { fp32: 'fp32', fp16: 'fp16', int8: 'q8', int4: 'q4' };

/**
 * Choices inside the int8/int4 files, for measuring them against each other (bench/export/formats.ts); every
 * combination stays loadable by transformers.js. Defaults are the shipped format.
 */
export interface OnnxQuantTuning {
  /** MatMulNBits accuracy_level: 4 (int8 activations, default) or 0 (fp32 activations). */
  accuracyLevel?: 0 | 4;
  /** Block scales in the file: float16 (default) or float32. */
  scaleType?: 'float32' | 'float16';
  scaleRule?: 'signed-max' | 'amax';
  /** Bits of the vocabulary matrices (embedding table, LM head) in an int4 file; default 8. */
  vocabBits?: 4 | 8;
}

const VOCAB_MATRICES = new Set(['model.embed_tokens.weight', 'lm_head.weight']);

// ORT refuses protobufs over 2 GB: bigger models put their weights in `<file>_data`, as Optimum does.
const INLINE_LIMIT = 1.8e9;

function writeModel(
  src: ExportSource,
  onnxDir: string,
  file: string,
  quantize: ({ bits: 4 | 8 } & OnnxQuantTuning) | 'fp16' | undefined,
): { files: string[]; external: boolean } {
  const weights = quantize === 'fp16' ? halfMatrices(src.weights) : src.weights;
  const m = buildLlama(src.config, weights, { kvCache: true, logits: 'all' });
  const external = parameterCount(src.config).total * (quantize === 'fp16' ? 2 : 4) >= INLINE_LIMIT;
  const opts = {
    fused: true,
    // accuracy_level 4 (int8 activations per block, as llama.cpp's Q8_0/Q4_0 dot products): ORT 1.30's CPU kernel
    // for 8-bit weights at level 0 measured ~90x slower than fp32 on the SmolLM2 shape, at level 4 2.4x faster;
    // 4-bit at level 4 decoded 87.5 vs 69.9 tokens/s at level 0 on the 30-layer shape (bench/export/formats.ts)
    quantize:
      quantize && quantize !== 'fp16'
        ? {
            bits: quantize.bits,
            blockSize: 32,
            accuracyLevel: quantize.accuracyLevel ?? (4 as const),
            // the embedding table quantized too (GatherBlockQuantized), one copy shared with a tied head
            gather: true,
            // float16 block scales in the file (34 B per 32 int8 weights as Q8_0, 18 B per 32 int4 as Q4_0); ORT
            // folds their Cast to float32 at session creation, so the kernels and their speed are unchanged
            // (bench/export/quant-variants.ts measured both side by side)
            scaleType: quantize.scaleType ?? 'float16',
            scaleRule: quantize.scaleRule,
            // int4: the vocabulary matrices at 8 bits, where llama.cpp's Q4_0 keeps its tied table/head at Q6_K;
            // at 4 bits they were most of int4's perplexity gap to llama.cpp (1.30x -> ~1.0x)
            bitsOf: (name: string) =>
              quantize.bits === 4 && VOCAB_MATRICES.has(name) ? (quantize.vocabBits ?? 8) : undefined,
          }
        : undefined,
    docString: 'exported by loom export --format onnx',
    externalData: external ? { dir: onnxDir, file: `${file}_data` } : undefined,
  };
  const bytes = toOnnx(m.graph, opts);
  // write-then-rename so an interrupted export never leaves a truncated model.onnx behind
  const tmp = join(onnxDir, `.${file}.tmp`);
  writeFileSync(tmp, bytes);
  renameSync(tmp, join(onnxDir, file));
  return { files: external ? [`onnx/${file}`, `onnx/${file}_data`] : [`onnx/${file}`], external };
}

export function writeOnnx(
  src: ExportSource,
  outDir: string,
  dtype: string,
  copyTokenizer: (to: string) => string[],
  tuning: OnnxQuantTuning = {},
): string[] {
  if (dtype !== 'fp32' && dtype !== 'fp16' && dtype !== 'int8' && dtype !== 'int4') {
    throw new LoomError('NOT_IMPLEMENTED', `--format onnx does not support --dtype ${dtype}`, {
      field: 'dtype',
      hint: 'for onnx use fp32, fp16 (model_fp16.onnx), int8 (model_quantized.onnx) or int4 (model_q4.onnx); q4_k_m is GGUF only',
    });
  }
  const onnxDir = join(outDir, 'onnx');
  mkdirSync(onnxDir, { recursive: true });
  const files: string[] = [];
  const fp32 = writeModel(src, onnxDir, ONNX_FILES.fp32, undefined);
  files.push(...fp32.files);
  if (dtype !== 'fp32') {
    const how = dtype === 'fp16' ? 'fp16' : { bits: dtype === 'int8' ? (8 as const) : (4 as const), ...tuning };
    files.push(...writeModel(src, onnxDir, ONNX_FILES[dtype], how).files);
  }
  const hf = toHfConfig({ ...src.config, torchDtype: 'float32' });
  hf.use_cache = true;
  // transformers.js reads its own section: KV cache in float32 (the graph's past/present type), weights outside the
  // protobuf when they had to be.
  hf['transformers.js_config'] = {
    dtype: TRANSFORMERS_JS_DTYPE[dtype],
    kv_cache_dtype: 'float32',
    ...(fp32.external ? { use_external_data_format: true } : {}),
  };
  writeJsonAtomic(join(outDir, 'config.json'), hf);
  files.push('config.json');
  const gen = Object.keys(src.generationConfig).length
    ? src.generationConfig
    : {
        bos_token_id: src.config.bosTokenId,
        eos_token_id: src.config.eosTokenId.length === 1 ? src.config.eosTokenId[0] : src.config.eosTokenId,
        pad_token_id: src.config.padTokenId,
      };
  writeJsonAtomic(join(outDir, 'generation_config.json'), gen);
  files.push('generation_config.json');
  files.push(...copyTokenizer(outDir));
  return files;
}

/** The weights with every matrix (embeddings, projections, head) as float16; norms and biases stay float32. */
function halfMatrices(weights: ExportSource['weights']): WeightSource {
  const cache = new Map<string, HostTensor>();
  return {
    get(name) {
      const w = weights.get(name);
      if (!w || w.dims.length < 2) return w;
      let h = cache.get(name);
      if (!h) {
        h = { dtype: 'float16', dims: [...w.dims], data: Uint16Array.from(w.data, toHalf) };
        cache.set(name, h);
      }
      return h;
    },
  };
}
