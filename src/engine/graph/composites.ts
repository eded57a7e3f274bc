/**
 * Composite ops written from primitives, so autodiff differentiates them for free. Each runs inside a
 * Graph.composite region so the fused lowering (onnx/fuse.ts) can swap it for one fused node in inference graphs.
 */
import { LoomError } from '../../core/errors.ts';
import { fmtShape, type Tensor } from './graph.ts';
import {
  add,
  arange,
  cast,
  concat,
  dimScalar,
  div,
  equal,
  erf,
  exp,
  gather,
  gatherElements,
  lessEqual,
  logicalNot,
  logSoftmax,
  matmul,
  maximum,
  mul,
  neg,
  reduceMean,
  reduceSum,
  reshape,
  scatterElements,
  sigmoid,
  slice,
  softmax,
  sqrt,
  squeeze,
  sub,
  tanh,
  transpose,
  unsqueeze,
  where,
} from './ops.ts';
import { type Dim, type DType, hostTensor } from './types.ts';

export const silu = (x: Tensor): Tensor => x.graph.composite('silu', [x], {}, () => mul(x, sigmoid(x)));

export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return x.graph.composite('gelu', [x], { approximate }, () => {
    if (approximate === 'tanh') {
      const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
      return mul(mul(x, 0.5), add(tanh(inner), 1));
    }
    return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
  });
}

function checkLastDim(op: string, x: Tensor, w: Tensor): void {
  const d = x.shape[x.rank - 1];
  const e = w.shape[0];
  if (w.rank !== 1 || (typeof d === 'number' && typeof e === 'number' && d !== e)) {
    throw new LoomError(
      'GRAPH',
      `${op}: weight ${fmtShape(w.shape)} must be 1-D and match the last dim of ${fmtShape(x.shape)}`,
    );
  }
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight (Llama/HF convention). */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  checkLastDim('rmsNorm', x, weight);
  return x.graph.composite('rmsNorm', [x, weight], { eps }, () => {
    const ms = reduceMean(mul(x, x), [-1], true);
    const s = sqrt(add(ms, eps));
    const xhat = div(x, s);
    const output = mul(xhat, weight);
    // dx = (g·w − x̂·mean(g·w·x̂)) / s and dw = Σ g·x̂: 6 nodes instead of the ~15 the primitive rules emit.
    const vjp = (g: Tensor, need: boolean[]): (Tensor | null)[] => {
      let dx: Tensor | null = null;
      let dw: Tensor | null = null;
      if (need[0]) {
        const gw = mul(g, weight);
        dx = div(sub(gw, mul(xhat, reduceMean(mul(gw, xhat), [-1], true))), s);
      }
      if (need[1]) {
        const prod = mul(g, xhat);
        dw = prod.rank > 1 ? reduceSum(prod, [...Array(prod.rank - 1).keys()], false) : prod;
      }
      return [dx, dw];
    };
    return { output, vjp };
  });
}

/** LayerNorm over the last axis with biased variance (PyTorch convention). */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  checkLastDim('layerNorm', x, weight);
  checkLastDim('layerNorm', x, bias);
  return x.graph.composite('layerNorm', [x, weight, bias], { eps }, () => {
    const xc = sub(x, reduceMean(x, [-1], true));
    const v = reduceMean(mul(xc, xc), [-1], true);
    return add(mul(div(xc, sqrt(add(v, eps))), weight), bias);
  });
}

/** Rotary embedding, HF rotate_half convention: x*cos + rotate_half(x)*sin. x [B,H,T,D], cos/sin [B|1,1,T,D]. */
export function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const d = x.shape[x.rank - 1];
  if (typeof d !== 'number' || d % 2 !== 0) {
    throw new LoomError('GRAPH', `rope: the last dim of ${fmtShape(x.shape)} must be a static even number`);
  }
  return x.graph.composite('rope', [x, cos, sin], {}, () => {
    const h = d / 2;
    const x1 = slice(x, [0], [h], [-1]);
    const x2 = slice(x, [h], [d], [-1]);
    const rot = concat([neg(x2), x1], -1);
    return add(mul(x, cos), mul(rot, sin));
  });
}

export interface AttentionOptions {
  causal?: boolean;
  /** Additive float mask broadcastable to [B,H,T,S]. */
  mask?: Tensor;
  /** Default 1/sqrt(D). */
  scale?: number;
}

function lowest(dtype: DType): number {
  return dtype === 'float16' ? -65504 : -3.4028234663852886e38;
}

/**
 * Scaled dot-product attention. q [B,H,T,D], k/v [B,Hkv,S,D]; H must be a multiple of Hkv (GQA: query head h uses
 * kv head floor(h / (H/Hkv)), like HF repeat_kv). Grouped heads are folded into the row dim with free reshapes
 * instead of copying k/v. Causal masking allows key j for query i when j <= i + (S - T) (KV-cache offset).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new LoomError('GRAPH', `attention: q, k, v must be [B,H,T,D]; got ${q}, ${k}, ${v}`);
  }
  const [B, H, T, D] = q.shape as [Dim, Dim, Dim, Dim];
  const Hkv = k.shape[1]!;
  const S = k.shape[2]!;
  if (typeof H !== 'number' || typeof Hkv !== 'number' || H % Hkv !== 0) {
    throw new LoomError('GRAPH', `attention: query heads ${H} must be a static multiple of kv heads ${Hkv}`);
  }
  if (typeof D === 'number' && typeof k.shape[3] === 'number' && k.shape[3] !== D) {
    throw new LoomError('GRAPH', `attention: head dims differ: q ${fmtShape(q.shape)} vs k ${fmtShape(k.shape)}`);
  }
  const G = H / Hkv;
  const scale = opts.scale ?? (typeof D === 'number' ? 1 / Math.sqrt(D) : undefined);
  if (scale === undefined) throw new LoomError('GRAPH', 'attention: pass scale when the head dim is symbolic');
  const inputs = opts.mask ? [q, k, v, opts.mask] : [q, k, v];
  return q.graph.composite('attention', inputs, { causal: opts.causal ? 1 : 0, scale, heads: H, kvHeads: Hkv }, () => {
    const g = q.graph;
    const qs = mul(q, scale);
    const qg = G === 1 ? qs : reshape(qs, [B, Hkv, -1, D]);
    let scores = matmul(qg, transpose(k, [0, 1, 3, 2])); // [B,Hkv,G*T,S]
    if (G > 1) scores = reshape(scores, [B, Hkv, G, T, S]);
    if (opts.mask) {
      let m = opts.mask;
      while (m.rank < 4) m = unsqueeze(m, [0]);
      if (m.rank !== 4) throw new LoomError('GRAPH', `attention: mask ${m} must have rank <= 4`);
      if (G > 1) m = m.shape[1] === 1 ? unsqueeze(m, [1]) : reshape(m, [m.shape[0]!, Hkv, G, m.shape[2]!, m.shape[3]!]);
      scores = add(scores, m);
    }
    if (opts.causal) {
      let allowed: Tensor;
      if (typeof T === 'number' && typeof S === 'number') {
        const vals: number[] = [];
        for (let i = 0; i < T; i++) for (let j = 0; j < S; j++) vals.push(j <= i + S - T ? 1 : 0);
        allowed = g.constant(hostTensor('bool', [T, S], vals));
      } else {
        const rows = unsqueeze(arange(g, T), [1]);
        const cols = unsqueeze(arange(g, S), [0]);
        const offset = sub(dimScalar(g, S), dimScalar(g, T));
        allowed = lessEqual(cols, add(rows, offset));
      }
      scores = where(allowed, scores, lowest(scores.dtype));
    }
    let p = softmax(scores, -1);
    if (G > 1) p = reshape(p, [B, Hkv, -1, S]);
    const o = matmul(p, v); // [B,Hkv,G*T,D]
    return G === 1 ? o : reshape(o, [B, H, T, D]);
  });
}

export interface CrossEntropyOptions {
  ignoreIndex?: number;
  /** Per-row float weights [N] (e.g. loss weights of turns). */
  weights?: Tensor;
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * The label side of token cross-entropy, shared by crossEntropy and chunkedCrossEntropy: labels equal to `ignore`
 * get weight 0 and a safe index 0 (so Gather stays in range); optional per-row weights multiply in.
 */
export function labelWeights(
  labels: Tensor,
  ignore: number,
  weights: Tensor | undefined,
  dtype: DType,
): { safe: Tensor; w: Tensor } {
  const lab = cast(labels, 'int64');
  const valid = logicalNot(equal(lab, ignore));
  const safe = where(valid, lab, 0);
  let w = cast(valid, dtype);
  if (weights) w = mul(w, cast(weights, dtype));
  return { safe, w };
}

/** log p(label) per row: lsm [N, V] log-softmax, safe [N] int64 labels -> [N]. */
export function pickedLogProb(lsm: Tensor, safe: Tensor): Tensor {
  return squeeze(gatherElements(lsm, unsqueeze(safe, [1]), 1), [1]);
}

/**
 * d logits = (softmax - onehot) * coef per row, as one scatter-add onto softmax*coef: three passes over [N,V]
 * instead of the seven the primitive rules (scatter into zeros, LogSoftmax VJP) would take. coef [N].
 */
export function crossEntropyLogitsGrad(lsm: Tensor, safe: Tensor, coef: Tensor): Tensor {
  const c = unsqueeze(coef, [1]);
  return scatterElements(mul(exp(lsm), c), unsqueeze(safe, [1]), neg(c), 1, 'add');
}
/**
 * Token cross-entropy. logits [N,V], labels [N] (int64/int32). Rows whose label is ignoreIndex count as 0.
 * 'mean' divides by the number of counted rows, or by the sum of their weights when weights are given
 * (so 0/1 weights behave like an ignore mask); 'none' returns the per-row losses [N].
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  if (logits.rank !== 2 || labels.rank !== 1) {
    throw new LoomError('GRAPH', `crossEntropy: logits must be [N,V] and labels [N]; got ${logits} and ${labels}`);
  }
  const n1 = logits.shape[0];
  const n2 = labels.shape[0];
  if (typeof n1 === 'number' && typeof n2 === 'number' && n1 !== n2) {
    throw new LoomError('GRAPH', `crossEntropy: ${n1} rows of logits vs ${n2} labels`);
  }
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const inputs = opts.weights ? [logits, labels, opts.weights] : [logits, labels];
  return logits.graph.composite('crossEntropy', inputs, { ignore, reduction }, () => {
    const { safe, w } = labelWeights(labels, ignore, opts.weights, logits.dtype);
    const lsm = logSoftmax(logits, -1);
    const per = neg(mul(pickedLogProb(lsm, safe), w));
    let output = per;
    let den: Tensor | undefined;
    if (reduction !== 'none') {
      const total = reduceSum(per, [0], false);
      if (reduction === 'sum') output = total;
      else {
        den = maximum(reduceSum(w, [0], false), 1e-12);
        output = div(total, den);
      }
    }
    const vjp = (g: Tensor, need: boolean[]): (Tensor | null)[] | undefined => {
      if (need[2]) return undefined; // gradient w.r.t. weights: use the primitive rules
      let coef = mul(g, w); // [N]
      if (den) coef = div(coef, den);
      return [crossEntropyLogitsGrad(lsm, safe, coef), null, null];
    };
    return { output, vjp };
  });
}

/** Embedding lookup: weight [V,D], ids [...] -> [..., D]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  if (weight.rank !== 2) throw new LoomError('GRAPH', `embedding: weight must be [V,D], got ${weight}`);
  return gather(weight, ids, 0);
}

/** PyTorch Linear: x [..., in] @ weight[out, in]^T (+ bias [out]). ORT folds the transpose into the MatMul. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  if (weight.rank !== 2) throw new LoomError('GRAPH', `linear: weight must be [out,in], got ${weight}`);
  const y = matmul(x, transpose(weight, [1, 0]));
  return bias ? add(y, bias) : y;
}
