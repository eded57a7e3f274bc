/**
 * The Llama-family causal LM as an engine graph: Llama 2/3 (rope scaling "llama3"), Qwen2/2.5 (qkv bias),
 * Qwen3 (q/k RMSNorm), Mistral, SmolLM2, TinyLlama. Parameter names are Hugging Face's, so safetensors map 1:1.
 * Parity with a float64 PyTorch reference (tools/reference/llama_ref.py) is tested to 1e-4 on logits and grads.
 *
 * API:
 *   buildLlama(cfg, weights, opts) -> LlamaGraph
 *     cfg       LlamaConfig from models/config.ts
 *     weights   anything with get(name) -> HostTensor (a Map works), HF names and HF layout ([out, in])
 *     opts      see LlamaGraphOptions below
 *
 * Graph inputs / outputs (Optimum / transformers.js names, so the graph we run is the graph we export):
 *   input_ids        int64 [batch_size, sequence_length]
 *   attention_mask   int64 [batch_size, total_sequence_length]   (opts.attentionMask: 'padding', 1 = real token)
 *   attention_bias   float [batch_size|1, 1, sequence_length, total_sequence_length] (opts.attentionMask: 'additive';
 *                    for packing: 0 where a query may attend, a large negative number elsewhere; causal is still applied)
 *   position_ids     int64 [batch_size, sequence_length]   (opts.positionIds, default true; else 0..T-1 after the past)
 *   past_key_values.{i}.key|value  float [batch_size, kv_heads, past_sequence_length, head_dim] (opts.kvCache)
 *   labels           int64 [batch_size, sequence_length]   (opts.loss) HF semantics: shifted inside the graph, -100 ignored
 *   loss_weights     float [batch_size, sequence_length]   (opts.lossWeights) per-token weight aligned with labels
 *   -> logits        float [batch_size, sequence_length | 1, vocab]   (opts.logits 'all' | 'last' | 'none')
 *                    For a classification config (cfg.labels) the head is score.weight and the last axis is the
 *                    class count: logits of every position; the caller pools the last real token (HF's
 *                    LlamaForSequenceClassification pools the last non-pad token; with right padding and causal
 *                    attention that token never sees the padding, so no mask is needed). With opts.loss the
 *                    labels are class ids at the pooled position and -100 (or weight 0) elsewhere.
 *   -> last_hidden_state  float [batch_size, sequence_length, hidden]  (opts.hidden; after the final norm)
 *   -> loss          float []                                           (opts.loss)
 *   -> present.{i}.key|value  float [batch_size, kv_heads, total_sequence_length, head_dim] (opts.kvCache)
 *
 * Extension points for training (LoRA / QLoRA / prefix tuning) — coordinate here, not by editing this file:
 *   opts.linear(ctx) is called for every projection (`model.layers.{i}.self_attn.{q,k,v,o}_proj`,
 *     `model.layers.{i}.mlp.{gate,up,down}_proj`, and `lm_head`). It returns the projection of ctx.x.
 *     ctx.base(x) builds the ordinary x @ W^T + b (adding the weight to the graph on first use); a LoRA hook returns
 *     add(ctx.base(x), scale * (x @ A^T) @ B^T); a QLoRA hook may skip base and use ctx.hostWeight() to build a
 *     quantized matmul instead. Without a hook every projection is ctx.base(x).
 *   opts.kv(layer, k, v) may replace the layer's keys/values ([B, kvHeads, S, headDim], after rope, after the cache)
 *     before attention, e.g. to prepend learned prefix key/values; the caller then owns the mask (use 'additive').
 *   opts.trainable(name) decides which HF weights become graph inputs (their gradients via engine grad()).
 *   LlamaGraph.params maps each HF name used in the graph to its tensor (trainable or frozen).
 */
import { LoomError } from '../core/errors.ts';
import {
  add,
  arange,
  attention,
  cast,
  chunkedCrossEntropy,
  concat,
  crossEntropy,
  type Dim,
  dimScalar,
  embedding,
  equal,
  Graph,
  gather,
  greaterEqual,
  type HostTensor,
  matmul,
  mul,
  reshape,
  rmsNorm,
  rope,
  silu,
  slice,
  sub,
  type Tensor,
  transpose,
  unsqueeze,
  where,
} from '../engine/index.ts';
import { type LlamaConfig, ropeCosSin } from './config.ts';

export interface WeightSource {
  get(name: string): HostTensor | undefined;
}

export interface LinearContext {
  /** HF module name, e.g. `model.layers.3.self_attn.q_proj` or `lm_head`. */
  name: string;
  /** Layer index, -1 for lm_head. */
  layer: number;
  graph: Graph;
  x: Tensor;
  /** The plain projection x @ W^T (+ b) with the model's own weight. */
  base(x: Tensor): Tensor;
  /** Host copy of the HF weight [out, in] (for quantizing or initialising adapters). */
  hostWeight(): HostTensor;
  hostBias(): HostTensor | undefined;
}

export type LinearHook = (ctx: LinearContext) => Tensor;
export type KvHook = (layer: number, k: Tensor, v: Tensor) => { k: Tensor; v: Tensor };

export interface LlamaGraphOptions {
  /** Build into an existing graph (e.g. a training step that adds an optimiser after the loss). */
  graph?: Graph;
  /** Which HF weights become trainable graph inputs. Default: none (inference). */
  trainable?: (name: string) => boolean;
  linear?: LinearHook;
  kv?: KvHook;
  /** 'padding' (default): int64 attention_mask [B, S]; 'additive': float attention_bias; 'none'. */
  attentionMask?: 'padding' | 'additive' | 'none';
  /** Feed position_ids (default true). Without it positions are 0..T-1 (after any past). */
  positionIds?: boolean;
  kvCache?: boolean;
  /** Which logits to output: every position, only the last (generation), or none (loss only). Default 'all'. */
  logits?: 'all' | 'last' | 'none';
  /** Output `last_hidden_state` (after the final norm), e.g. to check a classification head by hand. */
  hidden?: boolean;
  /** Add `labels` input and `loss` output (mean CE over labels != -100, HF shift). */
  loss?: boolean;
  /** Labels already aligned with logits (labels[t] is the target of position t): no shift in the graph. */
  labelsShifted?: boolean;
  lossWeights?: boolean;
  /**
   * With loss and logits 'none' (LM head only): the loss as engine chunkedCrossEntropy over `chunks` row pieces, so
   * the [B·T, vocab] logits never exist at once; `eagerGrad` (training step graphs) computes the head's gradients
   * piece by piece inside the forward. The lm_head linear hook is not called on this path.
   */
  lossChunks?: { chunks: number; eagerGrad: boolean };
  /**
   * Activation checkpointing: each decoder layer is a Graph.checkpoint segment, recomputed from its input in the
   * backward pass instead of keeping its activations (attention probabilities, MLP intermediates) alive.
   */
  checkpointLayers?: boolean;
  /** Rows of the precomputed rope cos/sin table (positions must stay below it). Default min(max_position_embeddings, 32768). */
  ropeTableSize?: number;
  /** Symbolic dim names (Optimum defaults). */
  dims?: { batch?: string; seq?: string; past?: string; total?: string };
}

export interface LlamaGraph {
  graph: Graph;
  config: LlamaConfig;
  /** HF weight name -> tensor, for every weight the graph uses. */
  params: Map<string, Tensor>;
  /** HF names that are trainable graph inputs, in parameter order. */
  trainable: string[];
  inputs: Record<string, Tensor>;
  logits?: Tensor;
  loss?: Tensor;
}

/** Large negative additive mask value: finite so fully masked rows (left padding) stay NaN-free. */
const MASK_NEG = -1e9;
const END = 2147483647;

function need(weights: WeightSource, name: string): HostTensor {
  const t = weights.get(name);
  if (!t) {
    throw new LoomError('MODEL_INVALID', `weight '${name}' is missing`, {
      field: name,
      hint: 'the safetensors file does not match config.json (architecture, tie_word_embeddings, layer count)',
    });
  }
  return t;
}

function checkShape(name: string, t: HostTensor, shape: number[]): void {
  if (t.dims.length !== shape.length || t.dims.some((d, i) => d !== shape[i])) {
    throw new LoomError('MODEL_SHAPE', `weight '${name}' has shape [${t.dims}] but the config implies [${shape}]`, {
      field: name,
    });
  }
}

export function buildLlama(cfg: LlamaConfig, weights: WeightSource, opts: LlamaGraphOptions = {}): LlamaGraph {
  const g = opts.graph ?? new Graph(`${cfg.architecture}-causal-lm`);
  const isTrainable = opts.trainable ?? (() => false);
  const dimB = opts.dims?.batch ?? 'batch_size';
  const dimT = opts.dims?.seq ?? 'sequence_length';
  const dimP = opts.dims?.past ?? 'past_sequence_length';
  const dimS = opts.dims?.total ?? 'total_sequence_length';
  const H = cfg.hiddenSize;
  const nh = cfg.numHeads;
  const nkv = cfg.numKvHeads;
  const hd = cfg.headDim;
  const params = new Map<string, Tensor>();
  const trainable: string[] = [];
  const inputs: Record<string, Tensor> = {};

  const param = (name: string, shape: number[]): Tensor => {
    const existing = params.get(name);
    if (existing) return existing;
    const host = need(weights, name);
    checkShape(name, host, shape);
    const train = isTrainable(name);
    let t = g.weight(name, host, { trainable: train });
    if (host.dtype !== 'float32' && !train) t = cast(t, 'float32');
    params.set(name, t);
    if (train) trainable.push(name);
    return t;
  };

  const linear = (module: string, layer: number, x: Tensor, outF: number, inF: number, bias: boolean): Tensor => {
    const base = (xin: Tensor): Tensor => {
      // HF stores [out, in]; the transpose of a frozen initializer is constant-folded by ORT at load time and a
      // transpose feeding MatMul is fused (FusedMatMul transB), so keeping HF layout costs nothing at run time.
      const w = param(`${module}.weight`, [outF, inF]);
      let y = matmul(xin, transpose(w, [1, 0]));
      if (bias) y = add(y, param(`${module}.bias`, [outF]));
      return y;
    };
    if (!opts.linear) return base(x);
    return opts.linear({
      name: module,
      layer,
      graph: g,
      x,
      base,
      hostWeight: () => need(weights, `${module}.weight`),
      hostBias: () => (bias ? need(weights, `${module}.bias`) : undefined),
    });
  };

  // --- inputs
  const inputIds = g.input('input_ids', 'int64', [dimB, dimT]);
  inputs.input_ids = inputIds;
  const maskMode = opts.attentionMask ?? 'padding';
  let additiveMask: Tensor | undefined;
  if (maskMode === 'padding') {
    const am = g.input('attention_mask', 'int64', [dimB, opts.kvCache ? dimS : dimT]);
    inputs.attention_mask = am;
    const bias = where(equal(am, 0), MASK_NEG, 0);
    additiveMask = unsqueeze(bias, [1, 2]); // [B,1,1,S]
  } else if (maskMode === 'additive') {
    additiveMask = g.input('attention_bias', 'float32', [dimB, 1, dimT, opts.kvCache ? dimS : dimT]);
    inputs.attention_bias = additiveMask;
  }

  const past: { k: Tensor; v: Tensor }[] = [];
  if (opts.kvCache) {
    for (let i = 0; i < cfg.numLayers; i++) {
      const k = g.input(`past_key_values.${i}.key`, 'float32', [dimB, nkv, dimP, hd]);
      const v = g.input(`past_key_values.${i}.value`, 'float32', [dimB, nkv, dimP, hd]);
      inputs[`past_key_values.${i}.key`] = k;
      inputs[`past_key_values.${i}.value`] = v;
      past.push({ k, v });
    }
  }

  let positions: Tensor;
  if (opts.positionIds ?? true) {
    positions = g.input('position_ids', 'int64', [dimB, dimT]);
    inputs.position_ids = positions;
  } else {
    // 0..T-1 after any cached tokens, shared by every row ([1, T]); left padding needs position_ids instead.
    const t = arange(g, dimT);
    positions = unsqueeze(opts.kvCache ? add(t, dimScalar(g, dimP)) : t, [0]);
  }

  // Rope tables are computed once on the host (as HF does, in float32) and gathered by position: no trig in
  // the graph.
  const tableSize = Math.min(opts.ropeTableSize ?? Math.min(cfg.maxPositionEmbeddings, 32768), 1 << 20);
  const { cos: cosHost, sin: sinHost } = ropeCosSin(cfg, tableSize);
  const cosT = g.constant({ dtype: 'float32', dims: [tableSize, hd], data: cosHost });
  const sinT = g.constant({ dtype: 'float32', dims: [tableSize, hd], data: sinHost });
  const cos = unsqueeze(gather(cosT, positions, 0), [1]); // [B,1,T,hd]
  const sin = unsqueeze(gather(sinT, positions, 0), [1]);

  // Mistral's sliding window (HF applies it from index distance, not position ids). Qwen2's per-layer window
  // (use_sliding_window + max_window_layers) is not applied.
  const window = cfg.architecture === 'mistral' ? cfg.slidingWindow : null;
  let mask = additiveMask;

  // --- body
  let x = embedding(param('model.embed_tokens.weight', [cfg.vocabSize, H]), inputIds); // [B,T,H]
  const layer = (i: number, x: Tensor): Tensor => {
    const p = `model.layers.${i}`;
    const residual = x;
    const y = rmsNorm(x, param(`${p}.input_layernorm.weight`, [H]), cfg.rmsNormEps);
    let q = reshape(linear(`${p}.self_attn.q_proj`, i, y, nh * hd, H, cfg.qkvBias), [dimB, dimT, nh, hd]);
    let k = reshape(linear(`${p}.self_attn.k_proj`, i, y, nkv * hd, H, cfg.qkvBias), [dimB, dimT, nkv, hd]);
    const vv = reshape(linear(`${p}.self_attn.v_proj`, i, y, nkv * hd, H, cfg.qkvBias), [dimB, dimT, nkv, hd]);
    if (cfg.qkNorm) {
      q = rmsNorm(q, param(`${p}.self_attn.q_norm.weight`, [hd]), cfg.rmsNormEps);
      k = rmsNorm(k, param(`${p}.self_attn.k_norm.weight`, [hd]), cfg.rmsNormEps);
    }
    q = rope(transpose(q, [0, 2, 1, 3]), cos, sin); // [B,nh,T,hd]
    k = rope(transpose(k, [0, 2, 1, 3]), cos, sin); // [B,nkv,T,hd]
    let v = transpose(vv, [0, 2, 1, 3]);
    if (opts.kvCache) {
      k = concat([past[i]!.k, k], 2);
      v = concat([past[i]!.v, v], 2);
      g.output(`present.${i}.key`, k);
      g.output(`present.${i}.value`, v);
    }
    if (opts.kv) ({ k, v } = opts.kv(i, k, v));
    if (i === 0 && window !== null) mask = addMasks(mask, slidingWindowMask(g, q.shape[2]!, k.shape[2]!, window));
    const att = attention(q, k, v, { causal: true, mask, scale: 1 / Math.sqrt(hd) });
    const merged = reshape(transpose(att, [0, 2, 1, 3]), [dimB, dimT, nh * hd]);
    const r2 = add(residual, linear(`${p}.self_attn.o_proj`, i, merged, H, nh * hd, cfg.oBias));
    const y2 = rmsNorm(r2, param(`${p}.post_attention_layernorm.weight`, [H]), cfg.rmsNormEps);
    const gate = linear(`${p}.mlp.gate_proj`, i, y2, cfg.intermediateSize, H, cfg.mlpBias);
    const up = linear(`${p}.mlp.up_proj`, i, y2, cfg.intermediateSize, H, cfg.mlpBias);
    return add(r2, linear(`${p}.mlp.down_proj`, i, mul(silu(gate), up), H, cfg.intermediateSize, cfg.mlpBias));
  };
  for (let i = 0; i < cfg.numLayers; i++) {
    x = opts.checkpointLayers && !opts.kvCache ? g.checkpoint(x, (xin) => layer(i, xin)) : layer(i, x);
  }
  x = rmsNorm(x, param('model.norm.weight', [H]), cfg.rmsNormEps);

  if (opts.hidden) g.output('last_hidden_state', x);
  const logitsMode = opts.logits ?? 'all';
  const classes = cfg.labels?.length;
  const head = (h: Tensor): Tensor => {
    if (classes !== undefined) return matmul(h, transpose(param('score.weight', [classes, H]), [1, 0]));
    if (cfg.tieWordEmbeddings) {
      // Tied: the lm_head hook still sees the module name `lm_head`; base reuses embed_tokens.
      const base = (xin: Tensor): Tensor =>
        matmul(xin, transpose(param('model.embed_tokens.weight', [cfg.vocabSize, H]), [1, 0]));
      if (!opts.linear) return base(h);
      return opts.linear({
        name: 'lm_head',
        layer: -1,
        graph: g,
        x: h,
        base,
        hostWeight: () => need(weights, 'model.embed_tokens.weight'),
        hostBias: () => undefined,
      });
    }
    return linear('lm_head', -1, h, cfg.vocabSize, H, false);
  };

  const out: LlamaGraph = { graph: g, config: cfg, params, trainable, inputs };
  const chunked = opts.loss && opts.lossChunks && classes === undefined && logitsMode !== 'all';
  let fullLogits: Tensor | undefined;
  if (logitsMode === 'all' || (opts.loss && !chunked)) fullLogits = head(x);
  if (logitsMode === 'all' && fullLogits) {
    g.output('logits', fullLogits);
    out.logits = fullLogits;
  } else if (logitsMode === 'last') {
    const last = head(slice(x, [-1], [END], [1])); // [B,1,V]
    g.output('logits', last);
    out.logits = last;
  }

  if (opts.loss && (fullLogits || chunked)) {
    const labels = g.input('labels', 'int64', [dimB, dimT]);
    inputs.labels = labels;
    let lg = fullLogits ?? x;
    let lb: Tensor = labels;
    let lw: Tensor | undefined;
    if (opts.lossWeights) {
      lw = g.input('loss_weights', 'float32', [dimB, dimT]);
      inputs.loss_weights = lw;
    }
    if (!opts.labelsShifted) {
      lg = slice(lg, [0], [-1], [1]);
      lb = slice(lb, [1], [END], [1]);
      if (lw) lw = slice(lw, [1], [END], [1]);
    }
    const weights = lw ? reshape(lw, [-1]) : undefined;
    let loss: Tensor;
    if (chunked && opts.lossChunks) {
      const headName = cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
      const w = param(headName, [cfg.vocabSize, H]);
      loss = chunkedCrossEntropy(reshape(lg, [-1, H]), transpose(w, [1, 0]), reshape(lb, [-1]), {
        chunks: opts.lossChunks.chunks,
        ignoreIndex: -100,
        weights,
        eagerGrad: opts.lossChunks.eagerGrad,
        headGrad: opts.lossChunks.eagerGrad && isTrainable(headName),
      });
    } else {
      loss = crossEntropy(reshape(lg, [-1, classes ?? cfg.vocabSize]), reshape(lb, [-1]), {
        ignoreIndex: -100,
        reduction: 'mean',
        weights,
      });
    }
    g.output('loss', loss);
    out.loss = loss;
  }
  return out;
}

/** [T, S] additive mask hiding keys at index distance >= window from the query (queries sit at the end). */
function slidingWindowMask(g: Graph, T: Dim, S: Dim, window: number): Tensor {
  const offset = sub(dimScalar(g, S), dimScalar(g, T));
  const rows = unsqueeze(add(arange(g, T), offset), [1]);
  const cols = unsqueeze(arange(g, S), [0]);
  return where(greaterEqual(sub(rows, cols), window), MASK_NEG, 0);
}

function addMasks(a: Tensor | undefined, b: Tensor): Tensor {
  return a ? add(a, b) : b;
}

/** Position ids for left-padded rows: cumsum(mask) - 1, with padding positions set to 1 (as HF generate does). */
export function positionIdsFromMask(
  mask: ArrayLike<number | bigint>,
  batch: number,
  len: number,
  past = 0,
): BigInt64Array {
  const out = new BigInt64Array(batch * len);
  for (let b = 0; b < batch; b++) {
    let c = 0;
    const total = past + len;
    for (let s = 0; s < total; s++) {
      const m = Number(mask[b * total + s]);
      c += m;
      if (s >= past) out[b * len + (s - past)] = BigInt(m === 0 ? 1 : c - 1);
    }
  }
  return out;
}
