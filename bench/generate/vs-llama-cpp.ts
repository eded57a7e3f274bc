/**
 * Batch-1 greedy decode through the generation path (CausalLM + generateIds: resident KV cache, in-graph argmax)
 * beside llama.cpp (node-llama-cpp 3.21.1, CPU, F32 weights and F32 KV cache) on the same random weights, exported
 * by `loom export --format gguf`. Each side runs in its own child process so peak RSS is its own.
 * Loom runs twice, each time in a fresh child with the same session cache folder (generate/session-cache.ts): `cold`
 * builds the cache entry (what the first run on a model costs), `warm` maps the cached model (every later run).
 * Prints one JSON line per run and one with the ratios (rss_ratio: warm; rss_ratio_cold: the first run).
 * Then once more (warm) with `spinning: false` (the decoder's threads sleep between ops instead of spinning), so
 * both ratios are in the same run.
 * Usage: npx tsx bench/generate/vs-llama-cpp.ts [threads] [--layers N] [--new N]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { offlineLlama, timeEvaluate } from '../../tools/reference/llama-cpp.ts';
import { peakRssMb } from '../peak-rss.ts';

const args = process.argv.slice(2);
const opt = (name: string, d: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const threads = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
const layers = opt('--layers', 30);
const newTokens = opt('--new', 128);
const PROMPT = 32;
const prompt = (V: number): number[] => Array.from({ length: PROMPT }, (_, i) => (i * 7919 + 13) % V);
const side = process.env.LOOM_BENCH_SIDE;

async function loomSide(dir: string, spinning: boolean): Promise<Record<string, number | boolean>> {
  const { CausalLM } = await import('../../src/generate/causal-lm.ts');
  const { generateIds } = await import('../../src/generate/generate.ts');
  let t0 = performance.now();
  const lm = await CausalLM.fromFolder(dir, { threads, spinning });
  await generateIds(lm, [prompt(lm.config.vocabSize)], { maxNewTokens: 1, temperature: 0, eosIds: [] });
  const load = (performance.now() - t0) / 1000;
  const cache = lm.sessionLoads.map((l) => l.cache).join(',');
  t0 = performance.now();
  await generateIds(lm, [prompt(lm.config.vocabSize)], { maxNewTokens: 1, temperature: 0, eosIds: [] });
  const first = performance.now() - t0;
  t0 = performance.now();
  const r = await generateIds(lm, [prompt(lm.config.vocabSize)], {
    maxNewTokens: newTokens + 1,
    temperature: 0,
    eosIds: [],
  });
  const decode = (performance.now() - t0 - first) / 1000;
  await lm.close();
  const n = (r[0]?.ids.length ?? 1) - 1;
  return {
    spinning: spinning ? 1 : 0,
    load_and_first_token_s: +load.toFixed(2),
    tokens_per_s: +(n / decode).toFixed(1),
    new_tokens: n,
    session_cache: cache,
  } as unknown as Record<string, number>;
}

async function llamaSide(gguf: string, V: number): Promise<Record<string, number>> {
  let t0 = performance.now();
  const llama = await offlineLlama();
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: 512,
    threads,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  const load = (performance.now() - t0) / 1000;
  const run = async (n: number): Promise<number> => n / (await timeEvaluate(ctx, prompt(V), n)).decode;
  await run(2);
  t0 = performance.now();
  const tps = await run(newTokens);
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return { load_s: +load.toFixed(2), tokens_per_s: +tps.toFixed(1), new_tokens: newTokens };
}

if (side) {
  const res =
    side === 'loom'
      ? await loomSide(args[args.length - 1]!, !args.includes('--no-spin'))
      : await llamaSide(args[args.length - 2]!, opt('--vocab', 0));
  const rss = peakRssMb();
  console.log(JSON.stringify({ side, run: process.env.LOOM_BENCH_RUN, ...res, peak_rss_mb: rss }));
} else {
  const { presetConfig } = await import('../../src/models/config.ts');
  const { newModel, saveModelFolder } = await import('../../src/models/folder.ts');
  const { tinyTokenizerFiles } = await import('../../src/tokenizer/tiny.ts');
  const { exportArtefact } = await import('../../src/export/export.ts');
  const work = mkdtempSync(join(tmpdir(), 'loom-vs-llama-'));
  try {
    const cfg = presetConfig('smollm2-135m', { num_hidden_layers: layers });
    const dir = join(work, 'model');
    saveModelFolder(dir, { config: cfg, weights: newModel(cfg, 1), tokenizerFiles: tinyTokenizerFiles() });
    const gguf = exportArtefact({
      input: dir,
      format: 'gguf',
      dtype: 'fp32',
      out: join(work, 'gguf'),
      skipCheck: true,
    });
    const sessions = join(work, 'sessions');
    const child = (s: string, extra: string[], run = s): Record<string, number> => {
      const out = execFileSync(process.execPath, ['--import', 'tsx', import.meta.filename, ...extra], {
        env: { ...process.env, LOOM_BENCH_SIDE: s, LOOM_BENCH_RUN: run, LOOM_SESSION_CACHE: sessions },
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      });
      const line = out.trim().split('\n').pop()!;
      console.log(line);
      return JSON.parse(line) as Record<string, number>;
    };
    const common = [String(threads), '--new', String(newTokens)];
    const cold = child('loom', [...common, dir], 'cold');
    const loom = child('loom', [...common, dir], 'warm');
    const ref = child('llama', [...common, '--vocab', String(cfg.vocabSize), gguf.artefact, 'x']);
    const sleeping = child('loom', [...common, '--no-spin', dir], 'warm');
    console.log(
      JSON.stringify({
        bench: 'generate.vs_llama_cpp_f32',
        layers,
        threads,
        prompt: PROMPT,
        decode_ratio: +(loom.tokens_per_s! / ref.tokens_per_s!).toFixed(2),
        decode_ratio_no_spin: +(sleeping.tokens_per_s! / ref.tokens_per_s!).toFixed(2),
        rss_ratio: +(loom.peak_rss_mb! / ref.peak_rss_mb!).toFixed(2),
        rss_ratio_cold: +(cold.peak_rss_mb! / ref.peak_rss_mb!).toFixed(2),
      }),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
