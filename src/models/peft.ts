import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { loomVersion } from '../core/version.ts';
import type { LlamaConfig } from './config.ts';
import {
  type Float32Named,
  SafetensorsReader,
  type TensorData,
  writeSafetensors,
  writeSharded,
} from './safetensors.ts';

/**
 * PEFT adapter folders, the layout `PeftModel.from_pretrained` loads:
 *   adapter_config.json        peft_type LORA or PREFIX_TUNING, task_type CAUSAL_LM, …
 *   adapter_model.safetensors  LoRA: `base_model.model.<module>.lora_A.weight` [r, in], `…lora_B.weight` [out, r]
 *                              prefix: `prompt_embeddings` [num_virtual_tokens, num_layers * 2 * kv_heads * head_dim]
 *   loom_adapter.json          Loom's own lineage: the absolute base model path of the training machine, Loom version
 * (PEFT drops the adapter name "default" from saved keys; prefix layout per peft `get_prompt`: view as
 * [tokens, layers*2, kv_heads, head_dim], entry 2i is layer i's keys, 2i+1 its values.)
 * adapter_config.json holds only fields of PEFT's LoraConfig / PrefixTuningConfig (older PEFT versions refuse
 * unknown keys with a TypeError in `__init__`); `base_model_name_or_path` is the Hub id when the base came from the
 * Hub, else the base folder relative to the adapter folder, so the pair can be moved or copied together.
 */
const PEFT_PREFIX = 'base_model.model.';

export interface LoraAdapterInfo {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  useRslora: boolean;
  baseModel: string;
  /** Sequence classification: task_type SEQ_CLS, the head saved whole (`modules_to_save: ["score"]`). */
  seqCls?: boolean;
}

const LOOM_ADAPTER_FILE = 'loom_adapter.json';

// owner/name as the Hub spells repo ids (huggingface_hub's REPO_ID_REGEX, without the 96-character limit)
const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

function readJsonFile(path: string): Record<string, unknown> | undefined {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return typeof j === 'object' && j !== null ? (j as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Hub id a base model folder came from: what `loom pull` recorded (.loom-pull.json), else config.json's
 * `_name_or_path` when it is a Hub id; never for a Loom run's output (a merged/ or model/ folder keeps its base's
 * config.json, but its weights are no longer the Hub's).
 */
export function hubIdOf(baseDir: string): string | undefined {
  if (existsSync(join(baseDir, '..', 'lineage.json'))) return undefined;
  const pulled = readJsonFile(join(baseDir, '.loom-pull.json'))?.repo;
  if (typeof pulled === 'string' && HUB_ID.test(pulled)) return pulled;
  const named = readJsonFile(join(baseDir, 'config.json'))?._name_or_path;
  if (typeof named !== 'string' || !HUB_ID.test(named) || named.startsWith('.') || existsSync(named)) return undefined;
  return named;
}

/** adapter_config.json's base_model_name_or_path: the Hub id, else the base folder relative to the adapter folder. */
export function peftBaseName(adapterDir: string, baseDir: string): string {
  return hubIdOf(baseDir) ?? (relative(resolve(adapterDir), resolve(baseDir)) || '.');
}

/**
 * The local base model folder of an adapter folder: base_model_name_or_path resolved against the adapter folder,
 * the absolute path in loom_adapter.json, then `extra` (e.g. the run's lineage), then a Hub id's `loom pull` folder
 * (models/<owner>--<name>). Undefined when none of them is a model folder.
 */
export function adapterBaseDir(adapterDir: string, extra: readonly (string | undefined)[] = []): string | undefined {
  const named = readJsonFile(join(adapterDir, 'adapter_config.json'))?.base_model_name_or_path;
  const lineage = readJsonFile(join(adapterDir, LOOM_ADAPTER_FILE))?.base_model;
  const cands: string[] = [];
  if (typeof named === 'string' && named) cands.push(isAbsolute(named) ? named : resolve(adapterDir, named));
  if (typeof lineage === 'string') cands.push(lineage);
  for (const e of extra) if (e) cands.push(resolve(e));
  if (typeof named === 'string' && HUB_ID.test(named)) cands.push(resolve('models', named.replace('/', '--')));
  return cands.find((d) => existsSync(join(d, 'config.json')));
}

function writeLoomAdapterFile(dir: string, peftType: string, baseModel: string): string {
  const path = join(dir, LOOM_ADAPTER_FILE);
  writeJsonAtomic(path, {
    library: 'loom',
    loom_version: loomVersion(),
    peft_type: peftType,
    base_model: resolve(baseModel),
    base_model_hub_id: hubIdOf(baseModel) ?? null,
  });
  return path;
}

/** Our in-graph names are `<module>.lora_A.weight`; PEFT's are the same with `base_model.model.` in front. */
export function writeLoraAdapter(dir: string, params: readonly Float32Named[], info: LoraAdapterInfo): string[] {
  mkdirSync(dir, { recursive: true });
  // Only LoraConfig fields (test/fixtures/peft/config-fields.json); use_rslora only when set, because PEFT before
  // 0.7 has no such field and false is its default anyway.
  const cfg = {
    peft_type: 'LORA',
    task_type: info.seqCls ? 'SEQ_CLS' : 'CAUSAL_LM',
    base_model_name_or_path: peftBaseName(dir, info.baseModel),
    r: info.r,
    lora_alpha: info.alpha,
    lora_dropout: info.dropout,
    target_modules: info.targetModules,
    ...(info.useRslora ? { use_rslora: true } : {}),
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    // PEFT saves a modules_to_save copy under the module's own name: base_model.model.score.weight
    modules_to_save: info.seqCls ? ['score'] : null,
    layers_to_transform: null,
    revision: null,
  };
  writeJsonAtomic(join(dir, 'adapter_config.json'), cfg);
  const meta = writeLoomAdapterFile(dir, 'LORA', info.baseModel);
  const tensors: [string, TensorData][] = params.map((p) => [
    `${PEFT_PREFIX}${p.name}`,
    { dtype: 'F32', shape: p.dims, data: p.data },
  ]);
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { metadata: { format: 'pt' } });
  return [join(dir, 'adapter_config.json'), join(dir, 'adapter_model.safetensors'), meta];
}

export function writePrefixAdapter(
  dir: string,
  prompt: Float32Named,
  model: LlamaConfig,
  baseModel: string,
  tokens: number,
): string[] {
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(join(dir, 'adapter_config.json'), {
    peft_type: 'PREFIX_TUNING',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: peftBaseName(dir, baseModel),
    num_virtual_tokens: tokens,
    // PEFT derives kv-head sizes from these for GQA models (token_dim // heads * kv_heads)
    token_dim: model.numHeads * model.headDim,
    num_attention_heads: model.numHeads,
    num_layers: model.numLayers,
    num_transformer_submodules: 1,
    encoder_hidden_size: model.numHeads * model.headDim,
    prefix_projection: false,
    inference_mode: true,
    revision: null,
  });
  const meta = writeLoomAdapterFile(dir, 'PREFIX_TUNING', baseModel);
  writeSafetensors(join(dir, 'adapter_model.safetensors'), [
    ['prompt_embeddings', { dtype: 'F32', shape: prompt.dims, data: prompt.data }],
  ]);
  return [join(dir, 'adapter_config.json'), join(dir, 'adapter_model.safetensors'), meta];
}

export interface LoadedAdapter {
  type: 'LORA' | 'PREFIX_TUNING';
  config: Record<string, unknown>;
  /** Tensors with the PEFT prefix removed (`model.layers.0.self_attn.q_proj.lora_A.weight`, `prompt_embeddings`). */
  tensors: Float32Named[];
}

/** Reads and validates a PEFT adapter folder against a base model config (if given). */
export function readPeftAdapter(dir: string, base?: LlamaConfig): LoadedAdapter {
  const cfgPath = join(dir, 'adapter_config.json');
  if (!existsSync(cfgPath)) {
    throw new LoomError('MODEL_INVALID', `${dir} is not a PEFT adapter folder (no adapter_config.json)`, { file: dir });
  }
  const config = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const type = config.peft_type;
  if (type !== 'LORA' && type !== 'PREFIX_TUNING') {
    throw new LoomError('MODEL_INVALID', `peft_type ${String(type)} is not supported (allowed: LORA, PREFIX_TUNING)`, {
      file: cfgPath,
      field: 'peft_type',
    });
  }
  const st = ['adapter_model.safetensors'].map((f) => join(dir, f)).find(existsSync);
  if (!st) {
    throw new LoomError('MODEL_INVALID', `${dir} has no adapter_model.safetensors`, {
      file: dir,
      hint: existsSync(join(dir, 'adapter_model.bin')) ? 'convert adapter_model.bin to safetensors first' : undefined,
    });
  }
  const r = SafetensorsReader.open(st);
  const tensors: Float32Named[] = [];
  try {
    for (const n of r.names()) {
      const t = r.readFloat32(n);
      const name = n.startsWith(PEFT_PREFIX) ? n.slice(PEFT_PREFIX.length) : n;
      // PEFT may keep the adapter name in keys saved by older versions: `.lora_A.default.weight`
      tensors.push({
        name: name.replace(/\.lora_([AB])\.default\.weight$/, '.lora_$1.weight'),
        dims: t.dims,
        data: t.data,
      });
    }
  } finally {
    r.close();
  }
  if (base) validateAdapter({ type, config, tensors }, base, dir);
  return { type, config, tensors };
}

function validateAdapter(a: LoadedAdapter, base: LlamaConfig, dir: string): void {
  if (a.type === 'PREFIX_TUNING') {
    const p = a.tensors.find((t) => t.name === 'prompt_embeddings');
    const n = Number(a.config.num_virtual_tokens);
    const want = [n, base.numLayers * 2 * base.numKvHeads * base.headDim];
    if (!p || p.dims.join() !== want.join()) {
      throw new LoomError(
        'MODEL_SHAPE',
        `prompt_embeddings must be [${want}] for this base model, got [${p?.dims ?? 'missing'}]`,
        {
          file: dir,
        },
      );
    }
    return;
  }
  const r = Number(a.config.r);
  for (const t of a.tensors) {
    const m = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$/.exec(t.name);
    if (!m) {
      throw new LoomError('MODEL_INVALID', `unexpected adapter tensor ${t.name}`, {
        file: dir,
        hint: 'only LoRA on the attention and MLP projections of a Llama-family model is supported',
      });
    }
    const layer = Number(m[1]);
    if (layer >= base.numLayers)
      throw new LoomError('MODEL_SHAPE', `${t.name}: the base model has ${base.numLayers} layers`, { file: dir });
    const [outF, inF] = projShape(base, m[3]!);
    const want = m[4] === 'A' ? [r, inF] : [outF, r];
    if (t.dims.join() !== want.join()) {
      throw new LoomError('MODEL_SHAPE', `${t.name} has shape [${t.dims}], expected [${want}]`, { file: dir });
    }
  }
}

function projShape(c: LlamaConfig, mod: string): [number, number] {
  const H = c.hiddenSize;
  switch (mod) {
    case 'q_proj':
      return [c.numHeads * c.headDim, H];
    case 'k_proj':
    case 'v_proj':
      return [c.numKvHeads * c.headDim, H];
    case 'o_proj':
      return [H, c.numHeads * c.headDim];
    case 'gate_proj':
    case 'up_proj':
      return [c.intermediateSize, H];
    case 'down_proj':
      return [H, c.intermediateSize];
    default:
      throw new LoomError('TRAIN_INVALID', `unknown module ${mod}`);
  }
}

/** LoRA scale from an adapter config (alpha/r, or alpha/sqrt(r) with use_rslora). */
export function adapterScale(config: Record<string, unknown>): number {
  const r = Number(config.r);
  const alpha = Number(config.lora_alpha ?? r);
  return config.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** W' = W + scale * B @ A, in float64 accumulation, for every adapted module. */
export function mergeLoraInto(weights: Map<string, Float32Named>, lora: readonly Float32Named[], scale: number): void {
  const byModule = new Map<string, { A?: Float32Named; B?: Float32Named }>();
  for (const t of lora) {
    const m = /^(.*)\.lora_([AB])\.weight$/.exec(t.name);
    if (!m) continue;
    const e = byModule.get(m[1]!) ?? {};
    if (m[2] === 'A') e.A = t;
    else e.B = t;
    byModule.set(m[1]!, e);
  }
  for (const [mod, { A, B }] of byModule) {
    const W = weights.get(`${mod}.weight`);
    if (!A || !B || !W)
      throw new LoomError('MODEL_INVALID', `cannot merge ${mod}: missing lora_A, lora_B or base weight`);
    const [out, inF] = W.dims as [number, number];
    const r = A.dims[0]!;
    const merged = new Float32Array(W.data);
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inF; i++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += B.data[o * r + k]! * A.data[k * inF + i]!;
        merged[o * inF + i] = W.data[o * inF + i]! + scale * s;
      }
    }
    weights.set(`${mod}.weight`, { name: W.name, dims: W.dims, data: merged });
  }
}

/** Writes a merged HF model folder: config + tokenizer files copied from the base, weights re-written (fp32). */
export function writeMergedModel(baseDir: string, outDir: string, weights: Map<string, Float32Named>): string[] {
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  for (const f of readdirSync(baseDir)) {
    // .loom-pull.json says the files came from the Hub as they are: no longer true of trained weights
    if (f.endsWith('.safetensors') || f === 'model.safetensors.index.json' || f.endsWith('.bin')) continue;
    if (f === '.loom-pull.json') continue;
    if (/\.(json|txt|model|jinja|py)$/.test(f)) {
      copyFileSync(join(baseDir, f), join(outDir, f));
      files.push(join(outDir, f));
    }
  }
  const names = writeSharded(
    outDir,
    [...weights.values()].map((w) => [w.name, { dtype: 'F32', shape: w.dims, data: w.data }] as [string, TensorData]),
  );
  return [...files, ...names.map((n) => resolve(outDir, n))];
}
