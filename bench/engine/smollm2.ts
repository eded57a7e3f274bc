/**
 * SmolLM2-135M-shaped model (random weights) through the engine, 2 threads: prefill tokens/s (1 x 512), decode
 * tokens/s (1 x 128 new tokens after a 32-token prompt, KV cache), forward+backward tokens/s of a LoRA-shaped step
 * (4 x 256, rank 8 on q/k/v/o/gate/up/down, grads of the adapters only), peak RSS, and achieved GFLOP/s.
 * Each rate also comes as an idle-machine estimate from process CPU seconds (see `rates`).
 * Usage: npx tsx bench/engine/smollm2.ts [threads] [--quick]
 * FLOP counts: forward = 2 * projection params per token + 2 * lm_head params per token that gets logits (prefill:
 * the last one) + attention (4 * context * heads * head_dim per token and layer, causal context); LoRA fwd+bwd = forward + input-gradient pass (same matmul FLOPs), frozen weight grads skipped.
 */
import {
  add,
  Engine,
  grad,
  type HostTensor,
  hostTensor,
  matmul,
  mul,
  type Session,
  type Tensor,
  toOnnx,
  transpose,
} from '../../src/engine/index.ts';
import { type LlamaConfig, presetConfig } from '../../src/models/config.ts';
import { newModel } from '../../src/models/folder.ts';
import { buildLlama, type LinearContext } from '../../src/models/llama.ts';
import { peakRssMb } from '../peak-rss.ts';

const threads = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2);
const quick = process.argv.includes('--quick');
const cfg: LlamaConfig = presetConfig('smollm2-135m', quick ? { num_hidden_layers: 4 } : {});
const weights = newModel(cfg, 1);

/**
 * Single-thread memory copy bandwidth (STREAM "copy" convention: bytes read + bytes written), best of 5 copies of
 * a 256 MiB buffer, far larger than the caches.
 */
function copyBandwidth(): number {
  const n = (256 * 2 ** 20) / 4;
  const src = new Float32Array(n).fill(1);
  const dst = new Float32Array(n);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return (2 * n * 4) / best / 1e9;
}

const H = cfg.hiddenSize;
const linParams =
  cfg.numLayers *
  (H * cfg.numHeads * cfg.headDim * 2 + H * cfg.numKvHeads * cfg.headDim * 2 + 3 * H * cfg.intermediateSize);
const headParams = H * cfg.vocabSize;

/** Forward FLOPs: projections for every token, lm_head for `headTokens` of them, attention over the context. */
function fwdFlops(tokens: number, ctx: (i: number) => number, headTokens = tokens): number {
  let attn = 0;
  for (let i = 0; i < tokens; i++) attn += 4 * ctx(i) * cfg.numHeads * cfg.headDim * cfg.numLayers;
  return 2 * linParams * tokens + 2 * headParams * headTokens + attn;
}

function ids(batch: number, len: number, seed = 1): HostTensor {
  const d = new BigInt64Array(batch * len);
  let s = seed;
  for (let i = 0; i < d.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    d[i] = BigInt(s % cfg.vocabSize);
  }
  return { dtype: 'int64', dims: [batch, len], data: d };
}

function positions(batch: number, len: number, start = 0): HostTensor {
  const d = new BigInt64Array(batch * len);
  for (let b = 0; b < batch; b++) for (let t = 0; t < len; t++) d[b * len + t] = BigInt(start + t);
  return { dtype: 'int64', dims: [batch, len], data: d };
}

const ones = (batch: number, len: number): HostTensor => ({
  dtype: 'int64',
  dims: [batch, len],
  data: new BigInt64Array(batch * len).fill(1n),
});

/** Median wall seconds and median process CPU seconds (all threads) per call. */
async function timeIt(fn: () => Promise<void>, minMs: number, minRuns: number): Promise<{ wall: number; cpu: number }> {
  await fn();
  const walls: number[] = [];
  const cpus: number[] = [];
  const t0 = performance.now();
  while (walls.length < minRuns || performance.now() - t0 < minMs) {
    const t = performance.now();
    const c = process.cpuUsage();
    await fn();
    const dc = process.cpuUsage(c);
    walls.push((performance.now() - t) / 1000);
    cpus.push((dc.user + dc.system) / 1e6);
  }
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { wall: med(walls), cpu: med(cpus) };
}

/**
 * Under contention wall time measures the other jobs too; CPU seconds of this process barely change with load,
 * so tokens / (CPU seconds / threads) estimates the rate of an otherwise idle machine (assuming threads scale).
 */
const rates = (tokens: number, t: { wall: number; cpu: number }, flops?: number) => ({
  tokens_per_s: +(tokens / t.wall).toFixed(1),
  cpu_s: +t.cpu.toFixed(3),
  idle_estimate_tokens_per_s: +(tokens / (t.cpu / threads)).toFixed(1),
  ...(flops
    ? {
        gflops: +(flops / t.wall / 1e9).toFixed(1),
        idle_estimate_gflops: +(flops / (t.cpu / threads) / 1e9).toFixed(1),
      }
    : {}),
});

const emit = (o: Record<string, unknown>) =>
  console.log(JSON.stringify({ bench: 'engine.smollm2', layers: cfg.numLayers, threads, ...o }));

const engine = await Engine.create({ threads });
try {
  // --- prefill + decode (one graph with KV cache, last-position logits)
  let t = performance.now();
  const inf = buildLlama(cfg, weights, { kvCache: true, logits: 'last' });
  const infBytes = toOnnx(inf.graph, { fused: true });
  let infSession: Session = await engine.load(infBytes);
  emit({
    phase: 'load_inference',
    seconds: +((performance.now() - t) / 1000).toFixed(2),
    onnx_mb: infBytes.length >> 20,
  });
  const emptyPast = (): Record<string, HostTensor> => {
    const f: Record<string, HostTensor> = {};
    for (let i = 0; i < cfg.numLayers; i++) {
      for (const kv of ['key', 'value']) {
        f[`past_key_values.${i}.${kv}`] = {
          dtype: 'float32',
          dims: [1, cfg.numKvHeads, 0, cfg.headDim],
          data: new Float32Array(0),
        };
      }
    }
    return f;
  };
  const P = 512;
  const prefillFeeds = {
    input_ids: ids(1, P),
    attention_mask: ones(1, P),
    position_ids: positions(1, P),
    ...emptyPast(),
  };
  const prefillS = await timeIt(
    async () => void (await infSession.run(prefillFeeds, ['logits'])),
    quick ? 500 : 3000,
    2,
  );
  const pf = fwdFlops(P, (i) => i + 1, 1); // last-position logits only
  emit({
    phase: 'prefill',
    batch: 1,
    tokens: P,
    ...rates(P, prefillS, pf),
  });

  const prompt = 32;
  const steps = quick ? 16 : 128;
  const decodeOnce = async () => {
    let out = await infSession.run({
      input_ids: ids(1, prompt),
      attention_mask: ones(1, prompt),
      position_ids: positions(1, prompt),
      ...emptyPast(),
    });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let s = 0; s < steps; s++) {
      const feeds: Record<string, HostTensor> = {
        input_ids: ids(1, 1, s + 7),
        attention_mask: ones(1, prompt + s + 1),
        position_ids: positions(1, 1, prompt + s),
      };
      for (let i = 0; i < cfg.numLayers; i++) {
        feeds[`past_key_values.${i}.key`] = out[`present.${i}.key`]!;
        feeds[`past_key_values.${i}.value`] = out[`present.${i}.value`]!;
      }
      out = await infSession.run(feeds, undefined, { transfer: true });
    }
    const dc = process.cpuUsage(c0);
    return { wall: (performance.now() - t0) / 1000, cpu: (dc.user + dc.system) / 1e6 };
  };
  await decodeOnce();
  const decodeS = await decodeOnce();
  const weightBytes = (linParams + headParams) * 4;
  // Decode reads every weight once per token, so its ceiling is copy bandwidth / weight bytes (measured now,
  // under the same load as the decode run).
  const copyGbPerS = copyBandwidth();
  const boundTokensPerS = (copyGbPerS * 1e9) / weightBytes;
  emit({
    phase: 'decode',
    prompt,
    new_tokens: steps,
    ...rates(steps, decodeS),
    weight_mb_per_token: +(weightBytes / 2 ** 20).toFixed(0),
    achieved_gb_per_s: +((weightBytes * steps) / decodeS.wall / 1e9).toFixed(2),
    copy_gb_per_s: +copyGbPerS.toFixed(2),
    bandwidth_bound_tokens_per_s: +boundTokensPerS.toFixed(1),
    fraction_of_bound: +(steps / decodeS.wall / boundTokensPerS).toFixed(3),
  });
  await infSession.release();
  // Same decode with 4-bit MatMulNBits weights (opt-in lossy lowering).
  infSession = await engine.load(toOnnx(inf.graph, { fused: true, quantize: { bits: 4, blockSize: 32 } }));
  await decodeOnce();
  const q4S = await decodeOnce();
  emit({ phase: 'decode_q4', prompt, new_tokens: steps, ...rates(steps, q4S) });
  const q4Prefill = await timeIt(
    async () => void (await infSession.run(prefillFeeds, ['logits'])),
    quick ? 500 : 3000,
    2,
  );
  emit({ phase: 'prefill_q4', batch: 1, tokens: P, ...rates(P, q4Prefill) });
  await infSession.release();

  // --- LoRA-shaped forward + backward (grads of rank-8 adapters on all projections)
  t = performance.now();
  const rank = 8;
  const adapters: Tensor[] = [];
  const feedsLora: Record<string, HostTensor> = {};
  const lora = (ctx: LinearContext): Tensor => {
    if (ctx.name === 'lm_head') return ctx.base(ctx.x);
    const w = ctx.hostWeight();
    const [outF, inF] = w.dims as [number, number];
    const a = ctx.graph.weight(
      `${ctx.name}.lora_A`,
      hostTensor('float32', [rank, inF], new Float32Array(rank * inF).fill(0.01)),
      { trainable: true },
    );
    const b = ctx.graph.weight(
      `${ctx.name}.lora_B`,
      hostTensor('float32', [outF, rank], new Float32Array(outF * rank).fill(0.001)),
      { trainable: true },
    );
    adapters.push(a, b);
    return add(ctx.base(ctx.x), mul(matmul(matmul(ctx.x, transpose(a, [1, 0])), transpose(b, [1, 0])), 2));
  };
  const tr = buildLlama(cfg, weights, { loss: true, logits: 'none', attentionMask: 'none', linear: lora });
  const grads = grad(tr.loss!, adapters);
  for (const [i, gr] of grads.entries()) tr.graph.output(`grad.${i}`, gr);
  Object.assign(feedsLora, tr.graph.trainableFeeds());
  const trBytes = toOnnx(tr.graph);
  const trSession = await engine.load(trBytes);
  emit({ phase: 'load_train', seconds: +((performance.now() - t) / 1000).toFixed(2), adapters: adapters.length });
  const [B, T] = [4, 256];
  const trainFeeds = { ...feedsLora, input_ids: ids(B, T, 3), position_ids: positions(B, T), labels: ids(B, T, 3) };
  const stepS = await timeIt(async () => void (await trSession.run(trainFeeds)), quick ? 1000 : 6000, 3);
  const tf = 2 * B * fwdFlops(T, (i) => i + 1);
  emit({
    phase: 'lora_fwd_bwd',
    batch: B,
    seq: T,
    step_s: +stepS.wall.toFixed(3),
    ...rates(B * T, stepS, tf),
  });
  await trSession.release();
} finally {
  await engine.close();
}
emit({ phase: 'memory', peak_rss_mb: peakRssMb() });
