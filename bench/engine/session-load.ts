/**
 * Where session creation time goes, per session kind, on the SmolLM2-135M shape (random weights):
 *   lora_step   the 30-layer LoRA training step (rank 8, all linear projections; ort_prepack off, as training
 *               loads it: src/train/loop.ts)
 *   generation  the decoder graph CausalLM loads (fused ops, KV cache, in-graph argmax; pre-packing on)
 * Each kind runs in its own child process, which loads the session in-thread with ORT's verbose log on; the parent
 * reads ORT's own timestamps from the child's stderr and splits the create call into phases:
 *   ort_parse_s        model bytes -> ORT graph (protobuf parse, initializer import)
 *   ort_graph_s        partitioning + graph optimisation (level 'all' for both kinds)
 *   ort_plan_s         execution and allocation planning (sequential planner, memory reuse plan)
 *   ort_initializers_s initializers copied into session state
 *   ort_kernels_s      kernel creation, pre-packing included
 * build_s (graph building in TypeScript) and serialise_s (ONNX emission) come before the create call.
 * Prints one JSON line per kind with the target beside it.
 *
 *   npx tsx bench/engine/session-load.ts [--layers 30] [--gen-layers 30] [--threads 2] [--kinds lora_step,generation]
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { peakRssMb } from '../peak-rss.ts';

const args = process.argv.slice(2);
const opt = (k: string, d: string): string => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1]! : d;
};
const THREADS = Number(opt('threads', '2'));
const TARGET: Record<string, number> = { lora_step: 2, generation: 1 };

async function child(kind: string, layers: number): Promise<Record<string, unknown>> {
  const { argMax, toOnnx } = await import('../../src/engine/index.ts');
  const backend = await import('../../src/engine/runtime/worker.mjs');
  const { presetConfig } = await import('../../src/models/config.ts');
  const { newModel } = await import('../../src/models/folder.ts');
  const cfg = presetConfig('smollm2-135m', { num_hidden_layers: layers });
  const weights = newModel(cfg, 0);
  let model: Uint8Array;
  let buildS: number;
  let serialiseS: number | null = null;
  let prepack: boolean;
  const t0 = performance.now();
  if (kind === 'lora_step') {
    const { buildTrainGraphs } = await import('../../src/train/graph.ts');
    const { Rng } = await import('../../src/train/rng.ts');
    const lora = {
      rank: 8,
      alpha: 16,
      scale: 2,
      dropout: 0,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      useRslora: false,
    };
    const optim = { weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, maxGradNorm: 1 };
    const graphs = buildTrainGraphs(
      cfg,
      weights,
      { method: 'lora', optim, packing: false, lora },
      () => new Rng(1),
      new Map(),
      { accumulate: false, evaluate: false },
    );
    // buildTrainGraphs emits the step graph itself: build_s covers both (graph building and serialisation)
    buildS = (performance.now() - t0) / 1000;
    model = graphs.step!;
    prepack = false;
  } else {
    const { buildLlama } = await import('../../src/models/llama.ts');
    const m = buildLlama(cfg, weights, { kvCache: true, logits: 'last' });
    if (m.logits) m.graph.output('next_token', argMax(m.logits, -1));
    buildS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    model = toOnnx(m.graph, { fused: true });
    serialiseS = (performance.now() - t1) / 1000;
    prepack = true;
  }
  const t2 = performance.now();
  // wall-clock epoch of the create call, to line up with ORT's log timestamps
  const createStart = Date.now();
  await backend.load(model, { threads: THREADS, logLevel: 0, prepack });
  const createS = (performance.now() - t2) / 1000;
  await backend.releaseAll();
  return {
    build_s: +buildS.toFixed(2),
    serialise_s: serialiseS === null ? null : +serialiseS.toFixed(2),
    model_mb: Math.round(model.byteLength / 2 ** 20),
    create_start_ms: createStart,
    ort_create_s: +createS.toFixed(2),
    prepack,
    peak_rss_mb: peakRssMb(),
  };
}

/** ORT log line timestamps (local wall clock, microseconds) of the phase markers, in ms since the epoch. */
function phases(stderr: string, start: number, createS: number): Record<string, number | null> {
  const at = (re: RegExp): number | undefined => {
    for (const line of stderr.split('\n')) {
      if (!re.test(line)) continue;
      const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)/.exec(line);
      if (m) return new Date(`${m[1]!.replace(' ', 'T').slice(0, 23)}Z`).getTime();
    }
    return undefined;
  };
  const init = at(/Initializing session\./);
  const plan = at(/SaveMLValueNameIndexMapping/);
  const inits = at(/Saving initialized tensors\./);
  const initsDone = at(/Done saving initialized tensors/);
  const end = start + createS * 1000;
  const d = (a: number | undefined, b: number | undefined): number | null =>
    a === undefined || b === undefined ? null : +((b - a) / 1000).toFixed(2);
  return {
    ort_parse_s: d(start, init),
    ort_graph_s: d(init, plan),
    ort_plan_s: d(plan, inits),
    ort_initializers_s: d(inits, initsDone),
    ort_kernels_s: d(initsDone, end),
  };
}

if (args.includes('--child')) {
  const res = await child(opt('child', 'lora_step'), Number(opt('layers', '30')));
  process.stdout.write(`${JSON.stringify(res)}\n`);
} else {
  const kinds = opt('kinds', 'lora_step,generation').split(',');
  for (const kind of kinds) {
    const layers = Number(kind === 'generation' ? opt('gen-layers', '30') : opt('layers', '30'));
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', kind, '--layers', String(layers)],
      { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, TZ: 'UTC' } },
    );
    const base = { bench: 'engine.session_load', kind, layers, threads: THREADS, target_s: TARGET[kind] };
    let res: Record<string, unknown>;
    try {
      res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
    } catch {
      process.stdout.write(`${JSON.stringify({ ...base, error: (r.stderr || r.stdout).slice(-500) })}\n`);
      continue;
    }
    const ph = phases(r.stderr, res.create_start_ms as number, res.ort_create_s as number);
    delete res.create_start_ms;
    process.stdout.write(`${JSON.stringify({ ...base, ...res, ...ph, load_avg: +loadavg()[0]!.toFixed(1) })}\n`);
  }
}
