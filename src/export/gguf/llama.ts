/**
 * Llama-family model -> GGUF, with the names, metadata and tokenizer llama.cpp reads (ggml docs/gguf.md; llama.cpp's
 * gguf-py constants and convert_hf_to_gguf.py were the reference for names and conventions).
 *
 * Architectures: Llama / Mistral / SmolLM2 / TinyLlama -> `llama`; Qwen2/2.5 -> `qwen2`; Qwen3 -> `qwen3`.
 * The `llama` arch in llama.cpp rotates interleaved pairs (x0,x1),(x2,x3)… whereas HF rotates halves
 * (rotate_half), so q_proj/k_proj rows are permuted per head: row (h, half, i) moves to (h, i, half). Qwen2/3 use
 * the NeoX (half) rotation in llama.cpp too, so their weights go in unchanged.
 * Llama 3 rope scaling becomes the `rope_freqs.weight` tensor (per-frequency divisors), as convert_hf_to_gguf does.
 *
 * Q4_0 follows llama-quantize too: every matrix Q4_0 but the output head (output.weight, or token_embd when tied),
 * which llama.cpp keeps at Q6_K (Q8_0 when ne[0] is not a multiple of 256). Q8_0 is Q8_0 throughout.
 * Q4_K_M is llama.cpp's per-tensor mix (llama-quant.cpp llama_tensor_get_type, no imatrix): Q4_K by default;
 * Q6_K for output.weight (or token_embd when the head is tied), for attn_v and ffn_down of the layers
 * use_more_bits picks (the first and last eighth, and every third in between); a matrix whose ne[0] is not a
 * multiple of 256 falls back as llama.cpp does: Q4_K -> Q5_0, Q6_K -> Q8_0 (the output: Q8_0); F16 if not even 32.
 *
 * API:
 *   ggufFromModel(src, dtype, name) -> { writer, arch, tensorTypes }
 *   q4kmType(ggufName, ne0, layer, nLayers, tiedHead) -> the GgmlType llama-quantize gives that tensor
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../../core/errors.ts';
import { type LlamaConfig, ropeInvFreq } from '../../models/config.ts';
import type { Float32Tensor } from '../../models/safetensors.ts';
import { resolveTemplate } from '../../tokenizer/chat.ts';
import { LoomTokenizer } from '../../tokenizer/tokenizer.ts';
import { GgmlType, GgufWriter } from './format.ts';

export type GgufDtype = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'q4_k_m';

/** general.file_type (llama_ftype): ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q4_K_M 15. */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k_m: 15 };
const TENSOR_TYPE: Record<Exclude<GgufDtype, 'q4_k_m'>, GgmlType> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  q4_0: GgmlType.Q4_0,
  q8_0: GgmlType.Q8_0,
};

/** llama.cpp's use_more_bits(i_layer, n_layers). */
function moreBits(i: number, n: number): boolean {
  const e = Math.trunc(n / 8);
  return i < e || i >= Math.trunc((7 * n) / 8) || (i - e) % 3 === 2;
}

function q4kmType(name: string, ne0: number, layer: number, nLayers: number, tiedHead: boolean): GgmlType {
  const output = name === 'output.weight' || (tiedHead && name === 'token_embd.weight');
  if (output) return ne0 % 256 === 0 ? GgmlType.Q6_K : GgmlType.Q8_0;
  let t: GgmlType = GgmlType.Q4_K;
  if ((name.endsWith('.attn_v.weight') || name.endsWith('.ffn_down.weight')) && moreBits(layer, nLayers)) {
    t = GgmlType.Q6_K;
  }
  if (ne0 % 256 === 0) return t;
  const fallback = t === GgmlType.Q4_K ? GgmlType.Q5_0 : GgmlType.Q8_0;
  return ne0 % 32 === 0 ? fallback : GgmlType.F16;
}

export function ggufArch(c: LlamaConfig): 'llama' | 'qwen2' | 'qwen3' {
  return c.architecture === 'qwen2' ? 'qwen2' : c.architecture === 'qwen3' ? 'qwen3' : 'llama';
}

const LAYER_NAMES: [RegExp, string][] = [
  [/^self_attn\.q_proj\.(weight|bias)$/, 'attn_q'],
  [/^self_attn\.k_proj\.(weight|bias)$/, 'attn_k'],
  [/^self_attn\.v_proj\.(weight|bias)$/, 'attn_v'],
  [/^self_attn\.o_proj\.(weight|bias)$/, 'attn_output'],
  [/^self_attn\.q_norm\.(weight)$/, 'attn_q_norm'],
  [/^self_attn\.k_norm\.(weight)$/, 'attn_k_norm'],
  [/^input_layernorm\.(weight)$/, 'attn_norm'],
  [/^post_attention_layernorm\.(weight)$/, 'ffn_norm'],
  [/^mlp\.gate_proj\.(weight|bias)$/, 'ffn_gate'],
  [/^mlp\.up_proj\.(weight|bias)$/, 'ffn_up'],
  [/^mlp\.down_proj\.(weight|bias)$/, 'ffn_down'],
];

export function ggufTensorName(hf: string): string {
  if (hf === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hf === 'model.norm.weight') return 'output_norm.weight';
  if (hf === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (m) {
    for (const [re, g] of LAYER_NAMES) {
      const k = re.exec(m[2]!);
      if (k) return `blk.${m[1]}.${g}.${k[1]}`;
    }
  }
  throw new LoomError('NOT_IMPLEMENTED', `no GGUF name for weight ${hf}`, {
    field: hf,
    hint: 'only Llama-family weights (attention, MLP, norms, embeddings, lm_head) map to GGUF',
  });
}

/** HF rotate_half rows -> llama.cpp interleaved rows, per head (convert_hf_to_gguf's LlamaModel.permute). */
function permuteRows(data: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  return reorderRows(data, rows, cols, heads, true);
}

/** llama.cpp interleaved rows -> HF rotate_half rows: the inverse of permuteRows (reading a GGUF back). */
export function unpermuteRows(data: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  return reorderRows(data, rows, cols, heads, false);
}

/** Row h·hd + s·half + i (HF) ↔ row h·hd + 2i + s (llama.cpp); `toInterleaved` picks the direction. */
function reorderRows(data: Float32Array, rows: number, cols: number, heads: number, toInterleaved: boolean) {
  const hd = rows / heads;
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const hf = h * hd + s * half + i;
        const cpp = h * hd + i * 2 + s;
        const [src, dst] = toInterleaved ? [hf, cpp] : [cpp, hf];
        out.set(data.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges?: (string | [string, string])[] };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  pre_tokenizer?: unknown;
  post_processor?: unknown;
}

/** llama.cpp's name for the pre-tokenizer regex (`tokenizer.ggml.pre`), recognised from the split pattern. */
function preTokenizerName(pre: unknown): string {
  const s = JSON.stringify(pre ?? null);
  if (s.includes('\\\\p{N}{1,3}')) return 'llama-bpe';
  if (s.includes("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}")) return 'qwen2';
  if (s.includes('"ByteLevel"') && s.includes('"use_regex":true')) return 'gpt-2';
  return 'default';
}

function addTokenizer(w: GgufWriter, dir: string, vocabSize: number): { template: string } {
  let j: TokenizerJson;
  const path = join(dir, 'tokenizer.json');
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as TokenizerJson;
  } catch (e) {
    throw new LoomError('TOKENIZER', `cannot read ${path}: ${(e as Error).message}`, { file: path });
  }
  if (j.model.type !== 'BPE') {
    throw new LoomError('NOT_IMPLEMENTED', `GGUF export supports byte-level BPE tokenizers, not ${j.model.type}`, {
      file: path,
      field: 'model.type',
    });
  }
  const tok = LoomTokenizer.fromFolder(dir);
  const tokens: string[] = new Array(vocabSize);
  // token_type: 1 normal, 3 control (special added tokens), 4 user-defined (plain added tokens), 5 unused (padding)
  const types = new Int32Array(vocabSize).fill(1);
  for (const [t, id] of Object.entries(j.model.vocab)) if (id < vocabSize) tokens[id] = t;
  for (const a of j.added_tokens ?? []) {
    if (a.id >= vocabSize) continue;
    tokens[a.id] = a.content;
    types[a.id] = a.special === false ? 4 : 3;
  }
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = 5;
    }
  }
  const merges = (j.model.merges ?? []).map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));
  w.kv('tokenizer.ggml.model', { type: 'string', value: 'gpt2' });
  w.kv('tokenizer.ggml.pre', { type: 'string', value: preTokenizerName(j.pre_tokenizer) });
  w.kv('tokenizer.ggml.tokens', { type: 'string[]', value: tokens });
  w.kv('tokenizer.ggml.token_type', { type: 'i32[]', value: types });
  w.kv('tokenizer.ggml.merges', { type: 'string[]', value: merges });
  if (tok.bos) w.kv('tokenizer.ggml.bos_token_id', { type: 'u32', value: tok.bos.id });
  if (tok.eos) w.kv('tokenizer.ggml.eos_token_id', { type: 'u32', value: tok.eos.id });
  for (const id of tok.eosIds) {
    // the end-of-turn token (<|im_end|>, <|eot_id|>) when it differs from eos: llama.cpp stops on it too
    if (id !== tok.eos?.id) {
      w.kv('tokenizer.ggml.eot_token_id', { type: 'u32', value: id });
      break;
    }
  }
  if (tok.pad) w.kv('tokenizer.ggml.padding_token_id', { type: 'u32', value: tok.pad.id });
  const addsBos =
    tok.bos !== null &&
    (tok.addBosToken || JSON.stringify(j.post_processor ?? null).includes(JSON.stringify(tok.bos.token)));
  w.kv('tokenizer.ggml.add_bos_token', { type: 'bool', value: addsBos });
  w.kv('tokenizer.ggml.add_eos_token', { type: 'bool', value: false });
  const template = resolveTemplate(tok);
  w.kv('tokenizer.chat_template', { type: 'string', value: template });
  return { template };
}

export function ggufFromModel(
  config: LlamaConfig,
  weights: Map<string, Float32Tensor>,
  tokenizerDir: string,
  dtype: GgufDtype,
  name: string,
): { writer: GgufWriter; arch: string; template: string } {
  const c = config;
  const arch = ggufArch(c);
  const w = new GgufWriter();
  w.kv('general.architecture', { type: 'string', value: arch });
  w.kv('general.name', { type: 'string', value: name });
  w.kv('general.file_type', { type: 'u32', value: FILE_TYPE[dtype] });
  w.kv('general.quantization_version', { type: 'u32', value: 2 });
  w.kv('general.alignment', { type: 'u32', value: 32 });
  w.kv(`${arch}.vocab_size`, { type: 'u32', value: c.vocabSize });
  w.kv(`${arch}.context_length`, { type: 'u32', value: c.maxPositionEmbeddings });
  w.kv(`${arch}.embedding_length`, { type: 'u32', value: c.hiddenSize });
  w.kv(`${arch}.feed_forward_length`, { type: 'u32', value: c.intermediateSize });
  w.kv(`${arch}.block_count`, { type: 'u32', value: c.numLayers });
  w.kv(`${arch}.attention.head_count`, { type: 'u32', value: c.numHeads });
  w.kv(`${arch}.attention.head_count_kv`, { type: 'u32', value: c.numKvHeads });
  w.kv(`${arch}.attention.key_length`, { type: 'u32', value: c.headDim });
  w.kv(`${arch}.attention.value_length`, { type: 'u32', value: c.headDim });
  w.kv(`${arch}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: c.rmsNormEps });
  w.kv(`${arch}.rope.freq_base`, { type: 'f32', value: c.ropeTheta });
  w.kv(`${arch}.rope.dimension_count`, { type: 'u32', value: c.headDim });
  if (c.ropeScaling?.type === 'linear') {
    w.kv(`${arch}.rope.scaling.type`, { type: 'string', value: 'linear' });
    w.kv(`${arch}.rope.scaling.factor`, { type: 'f32', value: c.ropeScaling.factor });
  }
  const { template } = addTokenizer(w, tokenizerDir, c.vocabSize);

  const matrixType = (gname: string, dims: readonly number[]): GgmlType => {
    const head = gname === 'output.weight' || (c.tieWordEmbeddings && gname === 'token_embd.weight');
    if (dtype === 'q4_0' && head) return dims[dims.length - 1]! % 256 === 0 ? GgmlType.Q6_K : GgmlType.Q8_0;
    if (dtype !== 'q4_k_m') return TENSOR_TYPE[dtype];
    const layer = Number(/^blk\.(\d+)\./.exec(gname)?.[1] ?? -1);
    return q4kmType(gname, dims[dims.length - 1]!, layer, c.numLayers, c.tieWordEmbeddings);
  };
  if (c.ropeScaling?.type === 'llama3') {
    // llama.cpp divides each base frequency by rope_freqs[i]
    const base = ropeInvFreq({ ...c, ropeScaling: null });
    const scaled = ropeInvFreq(c);
    w.tensor(
      'rope_freqs.weight',
      [base.length],
      GgmlType.F32,
      base.map((b, i) => b / scaled[i]!),
    );
  }
  for (const [hf, t] of weights) {
    if (hf === 'lm_head.weight' && c.tieWordEmbeddings) continue;
    let data = t.data;
    const m = /\.self_attn\.([qk])_proj\.(weight|bias)$/.exec(hf);
    if (arch === 'llama' && m) {
      const heads = m[1] === 'q' ? c.numHeads : c.numKvHeads;
      data = permuteRows(data, t.dims[0]!, t.dims.length > 1 ? t.dims[1]! : 1, heads);
    }
    // norms and biases stay F32 like llama.cpp's converter; matrices take the requested type
    const gname = ggufTensorName(hf);
    w.tensor(gname, t.dims, t.dims.length >= 2 ? matrixType(gname, t.dims) : GgmlType.F32, data);
  }
  return { writer: w, arch, template };
}
