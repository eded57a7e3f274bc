/**
 * Training throughput on the SmolLM2-135M shape (vocab 49152, hidden 576, 30 layers, 9 heads, 3 KV heads,
 * intermediate 1536, tied embeddings), batch 4 x 256, 2 threads: Loom's one-graph training step (LoRA rank 8 on all
 * linear projections, and full fine-tuning) beside the PyTorch 1.13 reference (tools/reference/train_ref.py, tuned: see
 * torchEnv; it prints the BLAS library and OpenBLAS core it ran with) in the same run; MFU against the measured ORT MatMul peak; peak RSS per method.
 *
 *   npx tsx bench/train/throughput.ts [--steps 2] [--preset smollm2-135m] [--layers <preset's>] [--skip-torch] [--methods lora,full] [--no-arena]
 *     [--prepack | --no-prepack] [--mem-pattern] [--loss-chunks 4]
 *     [--checkpointing]
 * Session options default to training's (src/train/loop.ts): pre-packing off for frozen bases, on for full; ORT's
 * memory pattern off.
 * Prints JSON lines. Each measurement runs in its own process so peak RSS is per method.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Engine, Graph, type HostTensor, matmul, toOnnx } from '../../src/engine/index.ts';
import { type LlamaConfig, presetConfig } from '../../src/models/config.ts';
import { newModel } from '../../src/models/folder.ts';
import { buildTrainGraphs } from '../../src/train/graph.ts';
import type { Method, MethodOptions } from '../../src/train/options.ts';
import { Rng } from '../../src/train/rng.ts';
import { peakRssMb } from '../peak-rss.ts';

const args = process.argv.slice(2);
const opt = (k: string, d: string): string => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1]! : d;
};
const STEPS = Number(opt('steps', '2'));
/** `--preset qwen2.5-0.5b`: another model shape from src/models/config.ts presets (random weights). */
const PRESET = opt('preset', 'smollm2-135m');
const LAYERS = Number(opt('layers', String(presetConfig(PRESET).numLayers)));
const THREADS = Number(opt('threads', '2'));
/** `--no-arena`: load the step graph with ORT's CPU memory arena off (training's `ort_memory_arena: false`). */
const ARENA = !args.includes('--no-arena');
/** `--prepack` / `--no-prepack` (training's `ort_prepack`); default as training: off for frozen bases, on for full. */
const PREPACK: boolean | undefined = args.includes('--no-prepack')
  ? false
  : args.includes('--prepack')
    ? true
    : undefined;
/** `--mem-pattern`: load the step graph with ORT's memory pattern on (training's `ort_memory_pattern: true`). */
const MEM_PATTERN = args.includes('--mem-pattern');
/** `--loss-chunks N`: row pieces of the loss (training's `loss_chunks`, default 4; 1 = full logits at once). */
const LOSS_CHUNKS = Number(opt('loss-chunks', '4'));
/** `--checkpointing`: recompute each layer in the backward pass (training's `gradient_checkpointing: true`). */
const CHECKPOINTING = args.includes('--checkpointing');
const B = 4;
const T = 256;
const RANK = 8;

function model(): LlamaConfig {
  return presetConfig(PRESET, { num_hidden_layers: LAYERS });
}

/** Matmul FLOPs of one training step (multiply-add = 2), attention included. */
function stepFlops(m: LlamaConfig, method: Method): number {
  const H = m.hiddenSize;
  const hd = m.headDim;
  const perLayer = H * m.numHeads * hd * 2 + H * m.numKvHeads * hd * 2 + 3 * H * m.intermediateSize;
  const n = perLayer * m.numLayers + m.vocabSize * H;
  const tokens = B * T;
  const attnFwd = 4 * B * T * T * m.numHeads * hd * m.numLayers;
  // full: forward 2N, input grads 2N, weight grads 2N; LoRA: no weight grads for the frozen base
  const linear = (method === 'full' ? 6 : 4) * n * tokens;
  return linear + 3 * attnFwd;
}

async function matmulPeak(): Promise<{ peak_gflops: number; peak_gflops_per_cpu_s: number }> {
  const n = 2048;
  const g = new Graph('mm');
  const a = g.input('a', 'float32', [n, n]);
  const b = g.input('b', 'float32', [n, n]);
  g.output('c', matmul(a, b));
  const e = await Engine.create({ threads: THREADS });
  try {
    const s = await e.load(toOnnx(g));
    const data = new Float32Array(n * n).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    const feeds: Record<string, HostTensor> = {
      a: { dtype: 'float32', dims: [n, n], data },
      b: { dtype: 'float32', dims: [n, n], data },
    };
    await s.run(feeds);
    const times: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await s.run(feeds);
      const c = process.cpuUsage(c0);
      times.push((performance.now() - t0) / 1000);
      cpus.push((c.user + c.system) / 1e6);
    }
    times.sort((x, y) => x - y);
    cpus.sort((x, y) => x - y);
    return { peak_gflops: (2 * n ** 3) / times[0]! / 1e9, peak_gflops_per_cpu_s: (2 * n ** 3) / cpus[0]! / 1e9 };
  } finally {
    await e.close();
  }
}

function benchOptions(method: Method): MethodOptions {
  const common = {
    optim: { weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, maxGradNorm: 1 },
    packing: false,
    lossChunks: LOSS_CHUNKS,
    gradientCheckpointing: CHECKPOINTING,
  };
  const lora = {
    rank: RANK,
    alpha: 2 * RANK,
    scale: 2,
    dropout: 0,
    targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    useRslora: false,
  };
  switch (method) {
    case 'lora':
      return { ...common, method, lora };
    case 'qlora':
      return { ...common, method, lora, quantBlockSize: 32 };
    case 'full':
      return { ...common, method };
    case 'freeze':
      return { ...common, method, freezeLayers: 1, freezeModules: ['all'] };
    case 'prefix':
      return { ...common, method, numVirtualTokens: 16 };
  }
}

async function loomStep(method: Method): Promise<Record<string, unknown>> {
  const m = model();
  let weights: ReturnType<typeof newModel> | undefined = newModel(m, 0);
  const t0 = performance.now();
  const graphs = buildTrainGraphs(m, weights!, benchOptions(method), () => new Rng(1), new Map(), {
    accumulate: false,
    evaluate: false,
  });
  const buildS = (performance.now() - t0) / 1000;
  const rssBuild = peakRssMb();
  const e = await Engine.create({ threads: THREADS });
  try {
    const t1 = performance.now();
    const prepack = PREPACK ?? method === 'full';
    const s = await e.load(graphs.step!, { transfer: true, memArena: ARENA, prepack, memPattern: MEM_PATTERN });
    graphs.step = undefined;
    weights = undefined;
    const loadS = (performance.now() - t1) / 1000;
    const rssLoad = peakRssMb();
    const rng = new Rng(5);
    const ids = BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(m.vocabSize)));
    const pos = BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T));
    const params = new Map<string, Float32Array>(graphs.params.map((p) => [p.name, p.init]));
    const mom = new Map<string, readonly [Float32Array, Float32Array]>(
      graphs.params.map((p) => [p.name, [new Float32Array(p.init.length), new Float32Array(p.init.length)] as const]),
    );
    const times: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i <= STEPS; i++) {
      const feeds: Record<string, HostTensor> = {
        input_ids: { dtype: 'int64', dims: [B, T], data: ids.slice() },
        labels: { dtype: 'int64', dims: [B, T], data: ids.slice() },
        loss_weights: { dtype: 'float32', dims: [B, T], data: new Float32Array(B * T).fill(1) },
        position_ids: { dtype: 'int64', dims: [B, T], data: pos.slice() },
        loss_scale: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
        decay_factor: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
        step_size: { dtype: 'float32', dims: [], data: Float32Array.of(1e-4) },
        bias_correction2_sqrt: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
      };
      for (const p of graphs.params) {
        feeds[p.name] = { dtype: 'float32', dims: p.dims, data: params.get(p.name)! };
        feeds[`exp_avg.${p.name}`] = { dtype: 'float32', dims: p.dims, data: mom.get(p.name)![0] };
        feeds[`exp_avg_sq.${p.name}`] = { dtype: 'float32', dims: p.dims, data: mom.get(p.name)![1] };
      }
      const t = performance.now();
      const c0 = process.cpuUsage();
      const out = await s.run(feeds, undefined, { transfer: true });
      const cpu = process.cpuUsage(c0);
      if (i > 0) {
        times.push((performance.now() - t) / 1000);
        cpus.push((cpu.user + cpu.system) / 1e6);
      }
      for (const p of graphs.params) {
        params.set(p.name, out[`new.${p.name}`]!.data as Float32Array);
        mom.set(p.name, [
          out[`new_exp_avg.${p.name}`]!.data as Float32Array,
          out[`new_exp_avg_sq.${p.name}`]!.data as Float32Array,
        ]);
      }
    }
    times.sort((x, y) => x - y);
    cpus.sort((x, y) => x - y);
    const step = times[Math.floor(times.length / 2)]!;
    const cpuStep = cpus[Math.floor(cpus.length / 2)]!;
    return {
      cpu_s: Number(cpuStep.toFixed(2)),
      tokens_per_cpu_s: Number(((B * T) / cpuStep).toFixed(1)),
      gflops_per_cpu_s: Number((stepFlops(m, method) / cpuStep / 1e9).toFixed(1)),
      impl: 'loom',
      method,
      mem_arena: ARENA,
      prepack,
      mem_pattern: MEM_PATTERN,
      loss_chunks: LOSS_CHUNKS,
      gradient_checkpointing: CHECKPOINTING,
      step_s: Number(step.toFixed(3)),
      tokens_per_s: Number(((B * T) / step).toFixed(1)),
      gflops: Number((stepFlops(m, method) / step / 1e9).toFixed(1)),
      trainable: graphs.trainableParams,
      build_s: Number(buildS.toFixed(1)),
      load_s: Number(loadS.toFixed(1)),
      peak_rss_mb: peakRssMb(),
      // high-water marks after building the graphs in JS and after ORT loaded the session (the steps follow)
      peak_rss_build_mb: rssBuild,
      peak_rss_load_mb: rssLoad,
    };
  } finally {
    await e.close();
  }
}

function child(extra: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...extra], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return { error: (r.stderr || r.stdout).slice(-500) };
  }
}

/**
 * The tuned reference: libgomp's threads sleep when idle (PASSIVE) instead of spinning against OpenBLAS's for the
 * same cores, both pools sized to the bench's threads, and the OpenBLAS kernels that match this CPU (AVX-512 →
 * SkylakeX, AVX2 → Haswell). Untuned, PyTorch reads about 3x slower here. Any of these set by the caller wins.
 */
function torchEnv(): Record<string, string> {
  let flags = '';
  try {
    flags =
      readFileSync('/proc/cpuinfo', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('flags')) ?? '';
  } catch {
    flags = '';
  }
  const core = /\bavx512f\b/.test(flags) ? 'SkylakeX' : /\bavx2\b/.test(flags) ? 'Haswell' : undefined;
  const env: Record<string, string> = {
    OMP_WAIT_POLICY: 'PASSIVE',
    OMP_NUM_THREADS: String(THREADS),
    OPENBLAS_NUM_THREADS: String(THREADS),
    ...(core ? { OPENBLAS_CORETYPE: core } : {}),
  };
  for (const k of Object.keys(env)) if (process.env[k]) env[k] = process.env[k]!;
  return env;
}

function torch(method: string): Record<string, unknown> {
  const m = model();
  const shape = {
    vocab: m.vocabSize,
    hidden: m.hiddenSize,
    heads: m.numHeads,
    'kv-heads': m.numKvHeads,
    inter: m.intermediateSize,
  };
  const r = spawnSync(
    '/usr/bin/python3',
    [
      'tools/reference/train_ref.py',
      '--method',
      method,
      '--threads',
      String(THREADS),
      '--layers',
      String(LAYERS),
      '--steps',
      String(STEPS),
      ...Object.entries(shape).flatMap(([k, v]) => [`--${k}`, String(v)]),
    ],
    { encoding: 'utf8', env: { ...process.env, ...torchEnv() } },
  );
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { impl: 'pytorch-1.13', method, error: (r.stderr || 'no output').slice(-300) };
  }
}

if (args.includes('--child')) {
  const method = opt('child', 'lora') as Method;
  process.stdout.write(
    `${JSON.stringify(method === ('peak' as Method) ? await matmulPeak() : await loomStep(method))}\n`,
  );
} else {
  const methods = opt('methods', 'lora,full').split(',') as Method[];
  const pk = child(['--child', 'peak', '--threads', String(THREADS)]);
  const peak = pk.peak_gflops as number;
  const peakCpu = pk.peak_gflops_per_cpu_s as number;
  const base = { bench: 'train_throughput', shape: PRESET, layers: LAYERS, batch: B, seq: T, threads: THREADS };
  const peaks = {
    ort_matmul_peak_gflops: Number(peak.toFixed(1)),
    ort_matmul_peak_gflops_per_cpu_s: Number(peakCpu.toFixed(1)),
  };
  process.stdout.write(`${JSON.stringify({ ...base, ...peaks, load_avg: loadavg()[0] })}\n`);
  for (const method of methods) {
    const loom = child([
      '--child',
      method,
      '--steps',
      String(STEPS),
      '--layers',
      String(LAYERS),
      '--preset',
      PRESET,
      '--threads',
      String(THREADS),
      ...(ARENA ? [] : ['--no-arena']),
      ...(PREPACK === undefined ? [] : [PREPACK ? '--prepack' : '--no-prepack']),
      ...(MEM_PATTERN ? ['--mem-pattern'] : []),
      '--loss-chunks',
      String(LOSS_CHUNKS),
      ...(CHECKPOINTING ? ['--checkpointing'] : []),
    ]);
    const mfu = typeof loom.gflops === 'number' ? Number(((loom.gflops / peak) * 100).toFixed(1)) : null;
    // contention-robust: FLOPs per CPU-second of the step vs per CPU-second of the peak MatMul
    const mfuCpu =
      typeof loom.gflops_per_cpu_s === 'number' ? Number(((loom.gflops_per_cpu_s / peakCpu) * 100).toFixed(1)) : null;
    process.stdout.write(
      `${JSON.stringify({ ...base, ...loom, mfu_pct: mfu, mfu_cpu_pct: mfuCpu, load_avg: loadavg()[0] })}\n`,
    );
    if (!args.includes('--skip-torch')) {
      const ref = torch(method);
      const r = (x: unknown, y: unknown) =>
        typeof x === 'number' && typeof y === 'number' ? Number((x / y).toFixed(2)) : null;
      const cmp = {
        loom_vs_torch: r(loom.tokens_per_s, ref.tokens_per_s),
        loom_vs_torch_per_cpu_s: r(loom.tokens_per_cpu_s, ref.tokens_per_cpu_s),
      };
      process.stdout.write(`${JSON.stringify({ ...base, ...ref, ...cmp, load_avg: loadavg()[0] })}\n`);
    }
  }
}
