/**
 * Continuous batching on the local engine (serve/scheduler.ts, the path `loom serve` runs for a local model, minus
 * HTTP and the tokenizer), SmolLM2-135M shape with random weights: the same 8 requests (prompts of 24-66 tokens,
 * 48 new tokens each, greedy, no EOS) served by 1, 4 and 8 concurrent streams. streams=1 is "one after another";
 * each stream sends its next request when its previous one finishes. Reports aggregate tokens/s, the ratio to
 * streams=1, and time to first token p50/p99 over the 8 requests (queueing included).
 * Usage: npx tsx bench/serve/batching.ts [threads=2] [--quick] [--rounds=N]   (--quick: 4 layers; each round runs
 * 1, 4, 8 streams again, its ratios against its own streams=1, so a loaded machine's drift shows)   JSON lines out.
 */
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { presetConfig } from '../../src/models/config.ts';
import { newModel } from '../../src/models/folder.ts';
import { BatchScheduler } from '../../src/serve/scheduler.ts';
import { peakRssMb } from '../peak-rss.ts';

const threads = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2);
const quick = process.argv.includes('--quick');
const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 1);
const cfg = presetConfig('smollm2-135m', quick ? { num_hidden_layers: 4 } : {});
const lm = await CausalLM.fromWeights(cfg, newModel(cfg, 1), { threads });
const REQUESTS = 8;
const NEW = 48;
const prompt = (r: number): number[] =>
  Array.from({ length: 24 + r * 6 }, (_, i) => (i * 7919 + r * 104729 + 13) % cfg.vocabSize);
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)]!;
const base = { bench: 'serve.batching', model: 'smollm2-135m-shape', layers: cfg.numLayers, threads };

async function serve(streams: number): Promise<{ seconds: number; tokens: number; ttft: number[]; steps: number }> {
  const sched = new BatchScheduler(lm, { maxBatch: 8 });
  const ttft: number[] = [];
  let tokens = 0;
  let next = 0;
  const t0 = performance.now();
  const client = async () => {
    while (next < REQUESTS) {
      const r = next++;
      const sent = performance.now();
      let first = 0;
      const res = await sched.submit(prompt(r), {
        temperature: 0,
        maxNewTokens: NEW,
        eosIds: [],
        onToken: () => {
          first ||= performance.now();
          return undefined;
        },
      });
      ttft.push(first - sent);
      tokens += res.ids.length;
    }
  };
  await Promise.all(Array.from({ length: streams }, client));
  const seconds = (performance.now() - t0) / 1000;
  const steps = sched.steps;
  await sched.close();
  return { seconds, tokens, ttft, steps };
}

let t = performance.now();
const warm = new BatchScheduler(lm, { maxBatch: 8 });
await Promise.all([
  warm.submit(prompt(0), { maxNewTokens: 2, eosIds: [] }),
  warm.submit(prompt(1), { maxNewTokens: 2, eosIds: [] }),
]);
await warm.close();
console.log(
  JSON.stringify({ ...base, phase: 'load_and_warmup', seconds: +((performance.now() - t) / 1000).toFixed(2) }),
);

let sequential = 0;
for (const [round, streams] of Array.from({ length: rounds }, (_, r) => [1, 4, 8].map((k) => [r + 1, k])).flat()) {
  t = performance.now();
  const r = await serve(streams);
  const tps = r.tokens / r.seconds;
  if (streams === 1) sequential = tps;
  console.log(
    JSON.stringify({
      ...base,
      round,
      streams,
      requests: REQUESTS,
      new_tokens: r.tokens,
      decode_steps: r.steps,
      seconds: +r.seconds.toFixed(2),
      tokens_per_s: +tps.toFixed(1),
      vs_sequential: +(tps / sequential).toFixed(2),
      ttft_p50_ms: +pct(r.ttft, 0.5).toFixed(1),
      ttft_p99_ms: +pct(r.ttft, 0.99).toFixed(1),
    }),
  );
}
console.log(JSON.stringify({ ...base, phase: 'memory', peak_rss_mb: peakRssMb() }));
await lm.close();
