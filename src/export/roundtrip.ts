/**
 * The round-trip check every `loom export` ends with: the artefact is read back from disk (HF folder reloaded, ONNX
 * file run by ONNX Runtime with transformers.js's feeds, GGUF tensors read and dequantised from the file) and
 * compared with the source model on a chat prompt rendered from fixed messages:
 *   template   the artefact's own chat template renders the same prompt text as the source's
 *   stops      the artefact declares the same end-of-sequence token ids
 *   logits     max |Δ logit| over every prompt and continuation position
 *   greedy     the source's greedy continuation (up to 8 tokens, cut at eos); agreement = the fraction of those
 *              positions where the artefact's argmax is the same token (teacher-forced), 1 = identical continuation;
 *              the artefact's own free-running greedy continuation and the share of the reference it reproduces
 *              before its first different token (greedy_prefix_agreement), both against the fp32 source
 * The verdict and the export's provenance go to DIR/lineage.json (writeLineage).
 *
 * API:
 *   roundTrip(result) -> RoundTrip;  writeLineage(result, check) -> path;  weightsHash(weights) -> sha256 hex
 *   ggufWeights(file, src) -> the file's tensors dequantised to float32 under their HF names (q/k rows un-permuted)
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { loomVersion } from '../core/version.ts';
import { Engine, type HostTensor } from '../engine/index.ts';
import { CausalLM } from '../generate/causal-lm.ts';
import { toHfConfig } from '../models/config.ts';
import { positionIdsFromMask } from '../models/llama.ts';
import type { Float32Tensor } from '../models/safetensors.ts';
import { applyChatTemplate, renderChat } from '../tokenizer/chat.ts';
import { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import type { ExportResult } from './export.ts';
import { dequantize, GgmlType, readGguf, tensorBytes } from './gguf/format.ts';
import { ggufArch, ggufTensorName, unpermuteRows } from './gguf/llama.ts';
import { ONNX_FILES, type OnnxDtype } from './onnx/onnx.ts';
import type { ExportSource } from './source.ts';

export interface RoundTrip {
  checked: string;
  prompt: string;
  prompt_ids: number[];
  template_identical: boolean;
  stops_identical: boolean;
  max_abs_logit_diff: number;
  greedy_reference: number[];
  /** Teacher-forced: share of the reference's greedy positions where the artefact's argmax is the same token. */
  greedy_agreement: number;
  /** What the agreement is measured against: the source model at fp32. */
  agreement_reference: 'fp32 source';
  /** The artefact's own free-running greedy continuation (its argmax fed back), cut at eos. */
  greedy_artefact: number[];
  /** Share of the reference continuation the artefact reproduces before its first different token. */
  greedy_prefix_agreement: number;
  verdict: 'identical' | 'close' | 'differs';
}

const MESSAGES = [
  { role: 'system' as const, content: 'You are a helpful assistant.' },
  { role: 'user' as const, content: 'Hello! Where is my order?' },
];
const NEW_TOKENS = 8;

type Forward = (ids: number[]) => Promise<Float32Array>;

function argmax(x: Float32Array, off: number, V: number): number {
  let best = 0;
  for (let v = 1; v < V; v++) if (x[off + v]! > x[off + best]!) best = v;
  return best;
}

/** sha256 over names, shapes and float32 bytes in name order: the checkpoint the export was made from. */
function weightsHash(weights: ReadonlyMap<string, Float32Tensor>): string {
  const h = createHash('sha256');
  for (const name of [...weights.keys()].sort()) {
    const t = weights.get(name)!;
    h.update(`${name}:${t.dims.join('x')};`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}

function readBytes(path: string, offset: number, n: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(n);
    if (readSync(fd, b, 0, n, offset) < n) {
      throw new LoomError('INPUT_MALFORMED', `${path}: truncated tensor data at byte ${offset}`, { file: path });
    }
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The HF weights as they are stored in a Loom GGUF file (dequantised, q/k rows back in HF order). */
export function ggufWeights(file: string, src: ExportSource): Map<string, Float32Tensor> {
  const h = readGguf(file);
  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  const arch = ggufArch(src.config);
  const out = new Map<string, Float32Tensor>();
  for (const [hf, t] of src.weights) {
    const gname = hf === 'lm_head.weight' && src.config.tieWordEmbeddings ? 'token_embd.weight' : ggufTensorName(hf);
    const info = byName.get(gname);
    if (!info) throw new LoomError('INPUT_MALFORMED', `${file} has no tensor ${gname}`, { file, field: gname });
    const type = GgmlType[info.type as keyof typeof GgmlType];
    const n = t.data.length;
    const bytes = readBytes(file, h.dataStart + info.offset, tensorBytes(type, n));
    let data = dequantize(bytes, type, n);
    const m = /\.self_attn\.([qk])_proj\.(weight|bias)$/.exec(hf);
    if (arch === 'llama' && m) {
      const heads = m[1] === 'q' ? src.config.numHeads : src.config.numKvHeads;
      data = unpermuteRows(data, t.dims[0]!, t.dims.length > 1 ? t.dims[1]! : 1, heads);
    }
    out.set(hf, { dtype: 'float32', dims: t.dims, data });
  }
  return out;
}

const int64 = (v: number[], dims: number[]): HostTensor => ({
  dtype: 'int64',
  dims,
  data: BigInt64Array.from(v.map(BigInt)),
});

/** Runs an exported ONNX file with the feeds transformers.js gives it (empty past, padding mask, position ids). */
async function onnxForward(file: string, src: ExportSource): Promise<{ fwd: Forward; close: () => Promise<void> }> {
  const engine = await Engine.create({ threads: 2 });
  const session = await engine.load(file);
  const { numLayers, numKvHeads, headDim } = src.config;
  const fwd: Forward = async (ids) => {
    const T = ids.length;
    const feeds: Record<string, HostTensor> = {
      input_ids: int64(ids, [1, T]),
      attention_mask: int64(new Array(T).fill(1), [1, T]),
      position_ids: { dtype: 'int64', dims: [1, T], data: positionIdsFromMask(new Array(T).fill(1), 1, T) },
    };
    for (let i = 0; i < numLayers; i++) {
      for (const kv of ['key', 'value']) {
        feeds[`past_key_values.${i}.${kv}`] = {
          dtype: 'float32',
          dims: [1, numKvHeads, 0, headDim],
          data: new Float32Array(0),
        };
      }
    }
    const out = await session.run(feeds, ['logits']);
    const l = out.logits?.data;
    if (!(l instanceof Float32Array))
      throw new LoomError('INPUT_MALFORMED', `${file} returned no float logits`, { file });
    return l;
  };
  return { fwd, close: () => engine.close() };
}

function declaredEos(r: ExportResult): number[] {
  if (r.format === 'gguf') {
    const id = readGguf(r.artefact).kv.get('tokenizer.ggml.eos_token_id');
    return typeof id === 'number' ? [id] : [];
  }
  const p = join(r.outDir, 'generation_config.json');
  if (!existsSync(p)) return [];
  const e = (JSON.parse(readFileSync(p, 'utf8')) as { eos_token_id?: number | number[] }).eos_token_id;
  return e === undefined || e === null ? [] : Array.isArray(e) ? e : [e];
}

function artefactTemplate(r: ExportResult): string | null {
  if (r.format === 'gguf') {
    const t = readGguf(r.artefact).kv.get('tokenizer.chat_template');
    return typeof t === 'string' ? t : null;
  }
  return LoomTokenizer.fromFolder(r.outDir).chatTemplate;
}

export async function roundTrip(r: ExportResult): Promise<RoundTrip | { checked: 'none'; reason: string }> {
  const src = r.source;
  if (r.format === 'peft') {
    return {
      checked: 'none',
      reason: 'a PEFT adapter is checked by loading it on its base model (loom chat --adapter)',
    };
  }
  const tok = LoomTokenizer.fromFolder(src.tokenizerDir);
  const prompt = applyChatTemplate(tok, MESSAGES, { addGenerationPrompt: true });
  const promptIds = await tok.encode(prompt, { addSpecialTokens: false });
  const theirTemplate = artefactTemplate(r);
  const theirPrompt = theirTemplate
    ? renderChat(theirTemplate, MESSAGES, {
        addGenerationPrompt: true,
        bosToken: tok.bos?.token,
        eosToken: tok.eos?.token,
      })
    : null;
  const eos = src.config.eosTokenId;
  const ref = await CausalLM.fromWeights(src.config, src.weights, { threads: 2 });
  let other: { fwd: Forward; close: () => Promise<void> };
  let checked: string;
  if (r.format === 'onnx') {
    const file = join(r.outDir, 'onnx', ONNX_FILES[r.dtype as OnnxDtype]);
    other = await onnxForward(file, src);
    checked = `onnx/${ONNX_FILES[r.dtype as OnnxDtype]} run by ONNX Runtime with transformers.js's feeds`;
  } else {
    const lm =
      r.format === 'hf'
        ? await CausalLM.fromFolder(r.outDir, { threads: 2 })
        : await CausalLM.fromWeights(src.config, ggufWeights(r.artefact, src), { threads: 2 });
    other = { fwd: async (ids) => lm.forward([ids]), close: () => lm.close() };
    checked =
      r.format === 'hf'
        ? 'HF folder reloaded by Loom'
        : `${r.artefact.split('/').pop()} tensors read back and dequantised`;
  }
  try {
    const V = src.config.vocabSize;
    const cont: number[] = [];
    for (let i = 0; i < NEW_TOKENS; i++) {
      const seq = [...promptIds, ...cont];
      const l = await ref.forward([seq]);
      const t = argmax(l, (seq.length - 1) * V, V);
      cont.push(t);
      if (eos.includes(t)) break;
    }
    const all = [...promptIds, ...cont];
    const a = await ref.forward([all]);
    const b = await other.fwd(all);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    let agree = 0;
    for (let i = 0; i < cont.length; i++) {
      const pos = promptIds.length - 1 + i;
      if (argmax(b, pos * V, V) === cont[i]) agree++;
    }
    const agreement = cont.length ? agree / cont.length : 1;
    // free running: the artefact's own greedy tokens (a lower precision may drift after one different token)
    const own: number[] = [];
    for (let i = 0; i < NEW_TOKENS; i++) {
      const seq = [...promptIds, ...own];
      // while it follows the reference, its logits are already in b (causal: a prefix of `all`)
      const l = seq.length <= all.length && own.every((t, j) => t === cont[j]) ? b : await other.fwd(seq);
      const t = argmax(l, (seq.length - 1) * V, V);
      own.push(t);
      if (eos.includes(t)) break;
    }
    let prefix = 0;
    while (prefix < cont.length && own[prefix] === cont[prefix]) prefix++;
    const theirEos = declaredEos(r);
    const stops = eos.length === 0 ? true : eos.some((e) => theirEos.includes(e));
    const same = theirPrompt === prompt;
    const verdict =
      same && stops && agreement === 1 && diff <= 1e-4
        ? 'identical'
        : same && stops && agreement === 1
          ? 'close'
          : 'differs';
    return {
      checked,
      prompt,
      prompt_ids: promptIds,
      template_identical: same,
      stops_identical: stops,
      max_abs_logit_diff: Number.isFinite(diff) ? diff : Number.POSITIVE_INFINITY,
      greedy_reference: cont,
      greedy_agreement: agreement,
      agreement_reference: 'fp32 source',
      greedy_artefact: own,
      greedy_prefix_agreement: cont.length ? prefix / cont.length : 1,
      verdict,
    };
  } finally {
    await other.close();
    await ref.close();
  }
}

/** DIR/lineage.json: where the export came from, how it was made, and its round-trip verdict. */
export function writeLineage(r: ExportResult, check: unknown): string {
  const dir = r.format === 'gguf' ? dirname(r.artefact) : r.outDir;
  const path = join(dir, 'lineage.json');
  const src = r.source;
  writeJsonAtomic(path, {
    kind: 'export',
    tool: 'loom',
    tool_version: loomVersion(),
    created_at: new Date().toISOString(),
    format: r.format,
    dtype: r.dtype,
    files: r.files,
    source: {
      model_dir: src.modelDir,
      weights_sha256: weightsHash(src.weights),
      run_dir: src.run?.dir ?? null,
      run_id: src.run?.runId ?? null,
      dataset_hash: src.run?.datasetHash ?? null,
      base_model: src.run?.baseModel ?? null,
      base_model_hash: src.run?.baseModelHash ?? null,
      config_hash: src.run?.configHash ?? null,
      adapter_merged: src.adapterDir !== undefined && r.format !== 'peft',
    },
    config: toHfConfig(src.config),
    roundtrip: check,
  });
  return path;
}
