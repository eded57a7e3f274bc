import { LoomError } from '../core/errors.ts';
import {
  add,
  cast,
  concat,
  div,
  Graph,
  grad,
  type HostTensor,
  less,
  matmul,
  mul,
  reduceSum,
  reshape,
  slice,
  sqrt,
  stopGradient,
  sub,
  type Tensor,
  toOnnx,
  transpose,
  unsqueeze,
  where,
} from '../engine/index.ts';
import { type LlamaConfig, parameterCount } from '../models/config.ts';
import { buildLlama, type KvHook, type LinearHook, type WeightSource } from '../models/llama.ts';
import type { MethodOptions } from './options.ts';
import { packedBytes, type Quantized4, quantizeTiles4, TILE_ROWS, type TiledQuantized4, tiledBytes } from './quant.ts';
import type { Rng } from './rng.ts';

/**
 * Training graphs. The step graph is ONE ONNX graph:
 *   batch (input_ids, labels, loss_weights, position_ids, [attention_bias]) + trainable params + AdamW moments +
 *   step scalars (loss_scale, decay_factor, step_size, bias_correction2_sqrt)
 *   → loss, grad_norm, new.<param>, new_exp_avg.<param>, new_exp_avg_sq.<param>
 * with global-norm clipping and AdamW (torch semantics: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
 * p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)) inside. Frozen base weights stay initializers, so only trainable
 * tensors cross into JS. With gradient accumulation, a grad-only graph runs for the first K-1 micro-batches and the
 * step graph adds their summed gradients (input `grad_in.<param>`) to its own before clipping.
 */
export interface ParamInfo {
  name: string;
  dims: number[];
  /** Initial value (from the base model, fresh init, or a checkpoint). */
  init: Float32Array;
  /** In the weight-decay set (not a bias or a norm weight). */
  decay: boolean;
}

export interface DropoutInput {
  name: string;
  features: number;
  /** Probability of zeroing a feature (the LoRA dropout). */
  rate: number;
}

export interface TrainGraphs {
  /** ONNX bytes; the trainer drops them once the session is loaded. */
  step?: Uint8Array;
  grad?: Uint8Array;
  evaluate?: Uint8Array;
  params: ParamInfo[];
  dropout: DropoutInput[];
  maskMode: 'none' | 'additive';
  /** QLoRA: base projection bytes as fp32 vs as 4-bit blocks (+ scales). */
  quant?: { fp32Bytes: number; quantBytes: number; modules: number };
  /** Parameter counts. */
  totalParams: number;
  trainableParams: number;
}

const PROJ = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$/;

function isNoDecay(name: string): boolean {
  return name.endsWith('.bias') || /norm\.weight$/.test(name) || name.includes('layernorm');
}

/** Which HF weights are trainable for full / freeze tuning. */
function freezeSelector(model: LlamaConfig, layers: number, modules: string[]): (name: string) => boolean {
  const L = model.numLayers;
  const n = Math.min(Math.abs(layers), L);
  const chosen = new Set(
    layers >= 0 ? Array.from({ length: n }, (_, i) => L - n + i) : Array.from({ length: n }, (_, i) => i),
  );
  const all = modules.includes('all');
  return (name) => {
    const m = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
    if (!m || !chosen.has(Number(m[1]))) return false;
    return all || modules.some((mod) => m[2]!.includes(mod));
  };
}

interface BuildState {
  params: ParamInfo[];
  dropout: DropoutInput[];
  quant: { fp32Bytes: number; quantBytes: number; modules: number };
}

function f32(data: HostTensor): Float32Array {
  if (!(data.data instanceof Float32Array)) throw new LoomError('MODEL_INVALID', 'expected float32 weights');
  return data.data;
}

/** Full/freeze tuning of a half-precision checkpoint trains an fp32 copy. */
function toF32(w: HostTensor): Float32Array {
  if (w.data instanceof Float32Array) return w.data;
  throw new LoomError('MODEL_INVALID', 'trainable weights must be loaded as float32', {
    hint: 'load the model with float32 conversion for full or freeze tuning',
  });
}

/** Kaiming-uniform(a=sqrt(5)) as PEFT/torch init lora_A: bound = 1/sqrt(fan_in). */
function initLoraA(rng: Rng, r: number, inF: number): Float32Array {
  const bound = 1 / Math.sqrt(inF);
  const a = new Float32Array(r * inF);
  for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * bound;
  return a;
}

/** com.microsoft.MatMulNBits: a · Bᵀ for B [n, k] stored as 4-bit blocks of `bs` along k (zero point 8). */
function matmulNBits(a: Tensor, q: Quantized4, n: number, k: number, bs: number): Tensor {
  const g = a.graph;
  const b = g.constant({ dtype: 'uint8', dims: [n, q.blocks, bs / 2], data: q.packed });
  const s = g.constant({ dtype: 'float32', dims: [n * q.blocks], data: q.scales });
  const shape = [...a.shape.slice(0, -1), n];
  const int = (v: number) => ({ kind: 'int' as const, v });
  // accuracy_level 0: MLAS dequantises each block to fp32 and multiplies in fp32, so the product is the fp32 matmul
  // against the dequantised matrix (int8 activations, level 4, would lose ~1e-2 relative in the gradients).
  const attrs = { K: int(k), N: int(n), bits: int(4), block_size: int(bs), accuracy_level: int(0) };
  return g.addNode('MatMulNBits', [a, b, s], [{ dtype: a.dtype, shape }], attrs, 'com.microsoft')[0]!;
}

/**
 * QLoRA's frozen projection y = x·Wᵀ computed from the 4-bit tiles directly (no fp32 copy of W exists at run
 * time). Its VJP is dx = g·W through the second, transposed copy, which dequantises to the same matrix (quant.ts),
 * so the gradient is exact; W itself is frozen and gets none. The transposed copy is only added to graphs that are
 * differentiated.
 */
export function qlinear4(x: Tensor, q: TiledQuantized4, n: number, k: number, bs: number): Tensor {
  return x.graph.composite('qlinear4', [x], { n, k, bs }, () => ({
    output: matmulNBits(x, q.fwd, n, k, bs),
    vjp: (gy, need) => [need[0] ? matmulNBits(gy, q.bwd, k, n, TILE_ROWS) : null],
  }));
}

/**
 * Builds one forward graph (loss only) with the method's hooks. `initial` overrides initial values by name
 * (resume, or continuing from an adapter); `rng` initialises fresh adapter weights.
 */
function buildForward(
  model: LlamaConfig,
  weights: WeightSource,
  o: MethodOptions,
  rng: Rng,
  initial: Map<string, Float32Array>,
  /** A graph that will be differentiated (step, grad): dropout inputs and eager loss gradients. */
  training: boolean,
  st: BuildState,
): { g: Graph; loss: Tensor; trainable: Tensor[] } {
  const g = new Graph(`train-${o.method}`);
  const src: WeightSource = {
    get: (name) => {
      const v = initial.get(name);
      const w = weights.get(name);
      return v && w ? { dtype: 'float32', dims: [...w.dims], data: v } : w;
    },
  };
  const trainTensors: Tensor[] = [];
  const addParam = (name: string, dims: number[], init: Float32Array, decay: boolean): Tensor => {
    const v = initial.get(name) ?? init;
    if (v.length !== init.length)
      throw new LoomError('CHECKPOINT', `${name}: checkpoint has ${v.length} values, expected ${init.length}`);
    const t = g.weight(name, { dtype: 'float32', dims, data: v }, { trainable: true });
    st.params.push({ name, dims, init: v, decay });
    trainTensors.push(t);
    return t;
  };

  let linear: LinearHook | undefined;
  let kv: KvHook | undefined;
  let trainable: ((name: string) => boolean) | undefined;
  const lora = o.method === 'lora' || o.method === 'qlora' ? o.lora : undefined;
  const qlora = o.method === 'qlora' ? o : undefined;
  if (o.method === 'full') trainable = () => true;
  if (o.method === 'freeze') trainable = freezeSelector(model, o.freezeLayers, o.freezeModules);
  if (model.labels) {
    // A classification head is always trained in full, whatever the method (PEFT's modules_to_save = ["score"]).
    const inner = trainable;
    trainable = (name) => name === 'score.weight' || (inner?.(name) ?? false);
  }

  if (lora) {
    linear = (ctx) => {
      const short = /\.(\w+)$/.exec(ctx.name)?.[1] ?? '';
      const isProj = ctx.layer >= 0 && PROJ.test(ctx.name);
      let base: Tensor;
      if (qlora && isProj) {
        const w = ctx.hostWeight();
        const [outF, inF] = w.dims as [number, number];
        base = qlinear4(
          ctx.x,
          quantizeTiles4(f32(w), outF, inF, qlora.quantBlockSize),
          outF,
          inF,
          qlora.quantBlockSize,
        );
        st.quant.fp32Bytes += outF * inF * 4;
        st.quant.quantBytes += training
          ? tiledBytes(outF, inF, qlora.quantBlockSize)
          : packedBytes(outF, inF, qlora.quantBlockSize);
        st.quant.modules++;
        const b = ctx.hostBias();
        if (b) base = add(base, g.constant(b));
      } else {
        base = ctx.base(ctx.x);
      }
      if (!isProj || !lora.targets.includes(short)) return base;
      const w = ctx.hostWeight();
      const [outF, inF] = w.dims as [number, number];
      const A = addParam(`${ctx.name}.lora_A.weight`, [lora.rank, inF], initLoraA(rng, lora.rank, inF), true);
      const B = addParam(`${ctx.name}.lora_B.weight`, [outF, lora.rank], new Float32Array(outF * lora.rank), true);
      let xin = ctx.x;
      if (training && lora.dropout > 0) {
        const name = `dropout.${ctx.name}`;
        const m = g.input(name, 'float32', ['batch_size', 'sequence_length', inF]);
        st.dropout.push({ name, features: inF, rate: lora.dropout });
        xin = mul(xin, m);
      }
      const delta = matmul(matmul(xin, transpose(A, [1, 0])), transpose(B, [1, 0]));
      return add(base, mul(delta, lora.scale));
    };
  }

  let prefix: Tensor | undefined;
  if (o.method === 'prefix') {
    const n = o.numVirtualTokens;
    const width = model.numLayers * 2 * model.numKvHeads * model.headDim;
    const init = new Float32Array(n * width);
    for (let i = 0; i < init.length; i++) init[i] = rng.normal();
    prefix = addParam('prompt_embeddings', [n, width], init, true);
    kv = (layer, k, v) => {
      const p4 = reshape(prefix!, [n, model.numLayers * 2, model.numKvHeads, model.headDim]);
      const pick = (j: number): Tensor => {
        const s = reshape(slice(p4, [j], [j + 1], [1]), [n, model.numKvHeads, model.headDim]);
        const hkd = unsqueeze(transpose(s, [1, 0, 2]), [0]); // [1, Hkv, n, hd]
        // broadcast over the batch: [B,1,1,1] ones taken from the keys' shape
        const ones = add(mul(stopGradient(slice(k, [0, 0, 0], [1, 1, 1], [1, 2, 3])), 0), 1);
        return mul(hkd, ones);
      };
      return { k: concat([pick(2 * layer), k], 2), v: concat([pick(2 * layer + 1), v], 2) };
    };
  }

  const built = buildLlama(model, src, {
    graph: g,
    trainable,
    linear,
    kv,
    attentionMask: o.packing ? 'additive' : 'none',
    positionIds: true,
    logits: 'none',
    loss: true,
    labelsShifted: true,
    lossWeights: true,
    lossChunks: (o.lossChunks ?? 1) > 1 ? { chunks: o.lossChunks!, eagerGrad: training } : undefined,
    checkpointLayers: training && o.gradientCheckpointing === true,
  });
  if (trainable) {
    for (const name of built.trainable) {
      const t = built.params.get(name)!;
      const w = src.get(name)!;
      st.params.push({ name, dims: [...w.dims], init: toF32(w), decay: !isNoDecay(name) });
      trainTensors.push(t);
    }
  }
  if (!built.loss) throw new LoomError('INTERNAL', 'model graph has no loss');
  return { g, loss: built.loss, trainable: trainTensors };
}

export function buildTrainGraphs(
  model: LlamaConfig,
  weights: WeightSource,
  o: MethodOptions,
  rngFor: () => Rng,
  initial: Map<string, Float32Array>,
  opts: { accumulate: boolean; evaluate: boolean },
): TrainGraphs {
  const st: BuildState = { params: [], dropout: [], quant: { fp32Bytes: 0, quantBytes: 0, modules: 0 } };

  // step graph
  const f = buildForward(model, weights, o, rngFor(), initial, true, st);
  const g = f.g;
  const lossScale = g.input('loss_scale', 'float32', []);
  const grads = grad(mul(f.loss, lossScale), f.trainable);
  let gs = grads;
  if (opts.accumulate)
    gs = grads.map((gr, i) => add(gr, g.input(`grad_in.${st.params[i]!.name}`, 'float32', st.params[i]!.dims)));
  const norm64 = globalNorm64(gs);
  g.output('grad_norm', cast(norm64, 'float32'));
  if (o.optim.maxGradNorm > 0) {
    const c = div(o.optim.maxGradNorm, add(norm64, 1e-6));
    const coef = cast(where(less(c, 1), c, 1), 'float32');
    gs = gs.map((gr) => mul(gr, coef));
  }
  const decayFactor = g.input('decay_factor', 'float32', []);
  const stepSize = g.input('step_size', 'float32', []);
  const bc2 = g.input('bias_correction2_sqrt', 'float32', []);
  st.params.forEach((p, i) => {
    const w = f.trainable[i]!;
    const gr = gs[i]!;
    const m = g.input(`exp_avg.${p.name}`, 'float32', p.dims);
    const v = g.input(`exp_avg_sq.${p.name}`, 'float32', p.dims);
    const p1 = p.decay && o.optim.weightDecay > 0 ? mul(w, decayFactor) : w;
    const m1 = add(mul(m, o.optim.beta1), mul(gr, 1 - o.optim.beta1));
    const v1 = add(mul(v, o.optim.beta2), mul(mul(gr, gr), 1 - o.optim.beta2));
    const denom = add(div(sqrt(v1), bc2), o.optim.eps);
    const p2 = sub(p1, mul(div(m1, denom), stepSize));
    g.output(`new.${p.name}`, p2);
    g.output(`new_exp_avg.${p.name}`, m1);
    g.output(`new_exp_avg_sq.${p.name}`, v1);
  });
  const step = toOnnx(g);

  // grad-only graph for accumulation micro-steps (same init values: a throwaway state)
  let gradBytes: Uint8Array | undefined;
  if (opts.accumulate) {
    const st2: BuildState = { params: [], dropout: [], quant: { fp32Bytes: 0, quantBytes: 0, modules: 0 } };
    const f2 = buildForward(model, weights, o, rngFor(), initial, true, st2);
    const ls = f2.g.input('loss_scale', 'float32', []);
    const gr2 = grad(mul(f2.loss, ls), f2.trainable);
    st2.params.forEach((p, i) => {
      f2.g.output(`grad.${p.name}`, gr2[i]!);
    });
    gradBytes = toOnnx(f2.g);
  }

  // evaluation graph: forward + loss with the trainable tensors as inputs
  let evaluate: Uint8Array | undefined;
  if (opts.evaluate) {
    const st3: BuildState = { params: [], dropout: [], quant: { fp32Bytes: 0, quantBytes: 0, modules: 0 } };
    const f3 = buildForward(model, weights, o, rngFor(), initial, false, st3);
    evaluate = toOnnx(f3.g);
  }

  const trainableParams = st.params.reduce((a, p) => a + p.init.length, 0);
  const baseCount = parameterCount(model).total;
  return {
    step,
    grad: gradBytes,
    evaluate,
    params: st.params,
    dropout: st.dropout,
    maskMode: o.packing ? 'additive' : 'none',
    quant: o.method === 'qlora' ? st.quant : undefined,
    totalParams: baseCount + (o.method === 'full' || o.method === 'freeze' ? 0 : trainableParams),
    trainableParams,
  };
}

/**
 * Global L2 norm of the gradients, as a float64 scalar. Squares are summed in float64: one float32 ReduceSum over
 * millions of elements (full fine-tuning's embedding) came out ~1e-4 too low, which skewed clipping; float64
 * keeps the error near 1e-12 for any size, and the casts cost little next to the backward pass.
 */
export function globalNorm64(gs: readonly Tensor[]): Tensor {
  let sq: Tensor | undefined;
  for (const gr of gs) {
    const d = cast(gr, 'float64');
    const s = reduceSum(
      mul(d, d),
      gr.shape.map((_, i) => i),
      false,
    );
    sq = sq ? add(sq, s) : s;
  }
  if (!sq) throw new LoomError('INTERNAL', 'no trainable tensors to take a gradient norm of');
  return sqrt(sq);
}
