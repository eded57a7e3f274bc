/**
 * QLoRA vs LoRA in one run, SmolLM2-135M shape (random weights), batch 4 x 256, LoRA rank 8 on every projection,
 * 2 threads: step tokens/s and peak RSS of each (one process per measurement, bench/train/throughput.ts --child),
 * and the ratios against the issue's target (QLoRA speed >= 0.8x LoRA at <= 50 % of its memory). LoRA and QLoRA run
 * with training's defaults (ORT pre-packing off for a frozen base); QLoRA also with pre-packing on (MLAS's packed
 * 4-bit GEMM instead of ORT dequantising each matrix into a transient buffer per call; ORT then also packs the fp32
 * head per consumer) and with activation checkpointing. Also prints the weight error of the 32-row scale tiles
 * against per-row blocks of the same size (the price of the exact gradient).
 *
 *   npx tsx bench/train/qlora.ts [--layers 8] [--steps 3] [--threads 2] [--preset smollm2-135m]
 * Prints JSON lines.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { quantizeBlocks } from '../../src/engine/onnx/quantize.ts';
import { presetConfig } from '../../src/models/config.ts';
import { newModel } from '../../src/models/folder.ts';
import { type Quantized4, quantizeTiles4 } from '../../src/train/quant.ts';

const args = process.argv.slice(2);
const opt = (k: string, d: string): string => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1]! : d;
};
const PRESET = opt('preset', 'smollm2-135m');
const LAYERS = opt('layers', '8');
const STEPS = opt('steps', '3');
const THREADS = opt('threads', '2');
const throughput = fileURLToPath(new URL('./throughput.ts', import.meta.url));

function child(method: string, extra: string[] = []): Record<string, unknown> {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      throughput,
      '--child',
      method,
      '--steps',
      STEPS,
      '--layers',
      LAYERS,
      '--preset',
      PRESET,
      '--threads',
      THREADS,
      ...extra,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return { method, error: (r.stderr || r.stdout).slice(-500) };
  }
}

/** Relative RMS error of a dequantised [n, k] matrix (blocks of `bs` along k). */
function relRms(w: Float32Array, q: Quantized4, n: number, k: number, bs: number): number {
  const rowBytes = (q.blocks * bs) / 2;
  let e = 0;
  let s = 0;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      const byte = q.packed[r * rowBytes + (c >> 1)]!;
      const v = c & 1 ? byte >> 4 : byte & 15;
      const d = (v - 8) * q.scales[r * q.blocks + Math.floor(c / bs)]! - w[r * k + c]!;
      e += d * d;
      s += w[r * k + c]! ** 2;
    }
  }
  return Math.sqrt(e / s);
}

/** Tile vs per-row-block quantisation error on layer 0's projections (random init, so no outlier structure). */
function weightError(): Record<string, number> {
  const m = presetConfig(PRESET, { num_hidden_layers: 1 });
  const w = newModel(m, 0);
  let tile = 0;
  let rows = 0;
  let count = 0;
  for (const name of ['self_attn.q_proj', 'self_attn.k_proj', 'mlp.up_proj', 'mlp.down_proj']) {
    const t = w.get(`model.layers.0.${name}.weight`)!;
    const [n, k] = t.dims as [number, number];
    const data = t.data as Float32Array;
    tile += relRms(data, quantizeTiles4(data, n, k, 32).fwd, n, k, 32);
    const b = quantizeBlocks(data, n, k, 4, 32);
    rows += relRms(data, { packed: b.packed, scales: b.scales, blocks: b.blocks }, n, k, 32);
    count++;
  }
  return {
    weight_rel_rms_tile32x32: Number((tile / count).toFixed(4)),
    weight_rel_rms_row_block32: Number((rows / count).toFixed(4)),
  };
}

const base = {
  bench: 'train_qlora',
  shape: PRESET,
  layers: Number(LAYERS),
  batch: 4,
  seq: 256,
  threads: Number(THREADS),
};
process.stdout.write(`${JSON.stringify({ ...base, ...weightError(), load_avg: loadavg()[0] })}\n`);
const lora = child('lora', ['--no-prepack']);
process.stdout.write(`${JSON.stringify({ ...base, ...lora, load_avg: loadavg()[0] })}\n`);
// training's defaults first (pre-packing off for a frozen base), then pre-packing on, then with activation
// checkpointing (a different trade: recomputes each layer in the backward pass)
const runs: [string, Record<string, unknown>][] = [
  ['qlora', child('qlora', ['--no-prepack'])],
  ['qlora_prepack', child('qlora', ['--prepack'])],
  ['qlora_checkpointing', child('qlora', ['--no-prepack', '--checkpointing'])],
];
const ratio = (x: unknown, y: unknown) =>
  typeof x === 'number' && typeof y === 'number' ? Number((x / y).toFixed(2)) : null;
for (const [variant, q] of runs) {
  process.stdout.write(`${JSON.stringify({ ...base, variant, ...q, load_avg: loadavg()[0] })}\n`);
  process.stdout.write(
    `${JSON.stringify({
      ...base,
      compare: `${variant}_vs_lora`,
      speed_ratio: ratio(q.tokens_per_s, lora.tokens_per_s),
      speed_ratio_per_cpu_s: ratio(q.tokens_per_cpu_s, lora.tokens_per_cpu_s),
      peak_rss_ratio: ratio(q.peak_rss_mb, lora.peak_rss_mb),
      target: 'speed >= 0.8, peak_rss <= 0.5',
      load_avg: loadavg()[0],
    })}\n`,
  );
}
