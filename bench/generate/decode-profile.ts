/**
 * Where a batch-1 fp32 decode step goes: the generation decoder (models/llama.ts, KV cache, in-graph argmax) on the
 * SmolLM2-135M shape with random weights, decoded token by token with the cache resident in the worker, split into
 * wall time per token, ORT's own run time (its profiler's model_run events) and the rest (JS, message passing), and
 * ORT's time per op type (sum of node events). Variants: `--spin` (intra-op spinning), `--primitive` (no fused contrib
 * ops), `--no-prepack`, `--threads N`.
 * Usage: npx tsx bench/generate/decode-profile.ts [threads] [--layers N] [--new N] [--spin] [--primitive] [--no-prepack]
 *   [--profile] (ORT's profiler on: per-op times; its overhead inflates the wall time)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argMax, Engine, type HostTensor, type ResidentTensor, type Session, toOnnx } from '../../src/engine/index.ts';
import { presetConfig } from '../../src/models/config.ts';
import { newModel } from '../../src/models/folder.ts';
import { buildLlama, positionIdsFromMask } from '../../src/models/llama.ts';

const args = process.argv.slice(2);
const opt = (name: string, d: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const threads = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
const layers = opt('--layers', 30);
const newTokens = opt('--new', 32);
const spinning = args.includes('--spin');
const fused = !args.includes('--primitive');
const prepack = !args.includes('--no-prepack');
const profile = args.includes('--profile');
const PROMPT = 32;

const cfg = presetConfig('smollm2-135m', { num_hidden_layers: layers });
const m = buildLlama(cfg, newModel(cfg, 1), { kvCache: true, logits: 'last' });
if (m.logits) m.graph.output('next_token', argMax(m.logits, -1));
const model = toOnnx(m.graph, { fused });
const dir = mkdtempSync(join(tmpdir(), 'loom-decode-profile-'));
const engine = await Engine.create({ threads, spinning, spinDurationUs: spinning ? 10 : undefined });
const int64 = (v: number[], dims: number[]): HostTensor => ({
  dtype: 'int64',
  dims,
  data: BigInt64Array.from(v, (x) => BigInt(x)),
});
const kvNames: string[] = [];
for (let i = 0; i < layers; i++) for (const kv of ['key', 'value']) kvNames.push(`${i}.${kv}`);

async function decodeRun(session: Session, n: number): Promise<number[]> {
  const ids = Array.from({ length: PROMPT }, (_, i) => (i * 7919 + 13) % cfg.vocabSize);
  const mask = ids.map(() => 1);
  let past: Record<string, HostTensor | ResidentTensor> = {};
  for (const k of kvNames) {
    past[`past_key_values.${k}`] = {
      dtype: 'float32',
      dims: [1, cfg.numKvHeads, 0, cfg.headDim],
      data: new Float32Array(0),
    };
  }
  let input = ids;
  const times: number[] = [];
  for (let s = 0; s <= n; s++) {
    const t0 = performance.now();
    const pastLen = mask.length - input.length;
    const { host, resident } = await session.runResident(
      {
        input_ids: int64(input, [1, input.length]),
        attention_mask: int64(mask, [1, mask.length]),
        position_ids: {
          dtype: 'int64',
          dims: [1, input.length],
          data: positionIdsFromMask(mask, 1, input.length, pastLen),
        },
        ...past,
      },
      ['next_token', ...kvNames.map((k) => `present.${k}`)],
      kvNames.map((k) => `present.${k}`),
    );
    past = Object.fromEntries(kvNames.map((k) => [`past_key_values.${k}`, resident[`present.${k}`]!]));
    const next = Number((host.next_token!.data as BigInt64Array)[0]);
    if (s > 0) times.push(performance.now() - t0);
    input = [next];
    mask.push(1);
  }
  await engine.freeResident(Object.values(past) as ResidentTensor[]);
  return times;
}

try {
  const session = await engine.load(model, { profilePrefix: profile ? join(dir, 'p') : undefined, prepack });
  await decodeRun(session, 4); // first-run allocations
  const times = await decodeRun(session, newTokens);
  const wallMs = times.reduce((a, b) => a + b, 0) / times.length;
  const base = { bench: 'generate.decode_profile', layers, threads, spinning, fused, prepack };
  if (!profile) {
    const best = Math.min(...times);
    console.log(
      JSON.stringify({
        ...base,
        tokens_per_s: +(1000 / wallMs).toFixed(1),
        wall_ms_per_token: +wallMs.toFixed(2),
        best_ms: +best.toFixed(2),
      }),
    );
  } else await report(session, wallMs, base);
} finally {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
}

async function report(session: Session, wallMs: number, base: Record<string, unknown>): Promise<void> {
  const trace = JSON.parse(readFileSync(await session.endProfiling(), 'utf8')) as {
    name: string;
    cat: string;
    dur: number;
    args?: { op_name?: string };
  }[];
  // the profile covers both runs and the prefill steps: keep the last newTokens single-token model runs
  const runs = trace.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const nodeEvents = trace.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const decodeRuns = runs.slice(-newTokens);
  const ortMs = decodeRuns.reduce((a, e) => a + e.dur, 0) / 1000 / newTokens;
  // node events of the decode runs: those whose timestamps fall inside them
  const spans = decodeRuns.map((e) => [
    (e as unknown as { ts: number }).ts,
    (e as unknown as { ts: number }).ts + e.dur,
  ]);
  const inDecode = (e: { ts?: number }) => spans.some(([a, b]) => (e.ts ?? 0) >= a! && (e.ts ?? 0) <= b!);
  const byOp = new Map<string, number>();
  let nodeTotal = 0;
  for (const e of nodeEvents as ((typeof nodeEvents)[0] & { ts: number })[]) {
    if (!inDecode(e)) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    nodeTotal += e.dur;
  }
  const ops = Object.fromEntries(
    [...byOp.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, +(v / 1000 / newTokens).toFixed(3)]),
  );
  console.log(
    JSON.stringify({
      ...base,
      tokens_per_s: +(1000 / wallMs).toFixed(1),
      wall_ms_per_token: +wallMs.toFixed(2),
      ort_run_ms_per_token: +ortMs.toFixed(2),
      outside_ort_ms_per_token: +(wallMs - ortMs).toFixed(2),
      node_sum_ms_per_token: +(nodeTotal / 1000 / newTokens).toFixed(2),
      op_ms_per_token: ops,
    }),
  );
}
