/**
 * ONNX export in the transformers.js / Optimum layout, so `AutoModelForCausalLM.from_pretrained(dir)` loads it as
 * it is:
 *   DIR/config.json, generation_config.json, tokenizer.json, tokenizer_config.json (+ chat_template), …
 *   DIR/onnx/model.onnx             fp32, always written (the reference the quantised files are checked against)
 *   DIR/onnx/model_quantized.onnx   --dtype int8: MatMulNBits 8-bit weights (transformers.js dtype 'q8')
 *   DIR/onnx/model_q4.onnx          --dtype int4: MatMulNBits 4-bit weights (transformers.js dtype 'q4')
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
import { toOnnx } from '../../engine/index.ts';
import { parameterCount, toHfConfig } from '../../models/config.ts';
import { buildLlama } from '../../models/llama.ts';
import type { ExportSource } from '../source.ts';

export type OnnxDtype = 'fp32' | 'int8' | 'int4';

export const ONNX_FILES: Record<OnnxDtype, string> = {
  fp32: 'model.onnx',
  int8: 'model_quantized.onnx',
  int4: 'model_q4.onnx',
};

/** transformers.js `dtype` option that selects each file (its DEFAULT_DTYPE_SUFFIX_MAPPING). */
export const TRANSFORMERS_JS_DTYPE: Record<OnnxDtype, string> = { fp32: 'fp32', int8: 'q8', int4: 'q4' };

// ORT refuses protobufs over 2 GB: bigger models put their weights in `<file>_data`, as Optimum does.
const INLINE_LIMIT = 1.8e9;

function writeModel(
  src: ExportSource,
  onnxDir: string,
  file: string,
  quantize: { bits: 4 | 8 } | undefined,
): { files: string[]; external: boolean } {
  const m = buildLlama(src.config, src.weights, { kvCache: true, logits: 'all' });
  const external = parameterCount(src.config).total * 4 >= INLINE_LIMIT;
  const opts = {
    fused: true,
    quantize: quantize ? { bits: quantize.bits, blockSize: 32 } : undefined,
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
): string[] {
  if (dtype !== 'fp32' && dtype !== 'int8' && dtype !== 'int4') {
    throw new LoomError('NOT_IMPLEMENTED', `--format onnx does not support --dtype ${dtype}`, {
      field: 'dtype',
      hint: 'for onnx use fp32, int8 (model_quantized.onnx) or int4 (model_q4.onnx); fp16 ONNX is not built yet',
    });
  }
  const onnxDir = join(outDir, 'onnx');
  mkdirSync(onnxDir, { recursive: true });
  const files: string[] = [];
  const fp32 = writeModel(src, onnxDir, ONNX_FILES.fp32, undefined);
  files.push(...fp32.files);
  if (dtype !== 'fp32') {
    files.push(...writeModel(src, onnxDir, ONNX_FILES[dtype], { bits: dtype === 'int8' ? 8 : 4 }).files);
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
