/**
 * End-to-end generation through CausalLM + generateIds (what `loom chat` and serving run), SmolLM2-135M shape with
 * random weights: prefill tokens/s (1 x 512 -> first token) and decode tokens/s (128 new tokens after a 32-token
 * prompt, greedy, sampling included). Complements bench/engine/smollm2.ts, which times the bare graphs.
 * Usage: npx tsx bench/generate/decode.ts [threads] [--quick]   (--quick: 4 layers)
 */
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { generateIds } from '../../src/generate/generate.ts';
import { presetConfig } from '../../src/models/config.ts';
import { newModel } from '../../src/models/folder.ts';
import { peakRssMb } from '../peak-rss.ts';

const threads = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2);
const quick = process.argv.includes('--quick');
const cfg = presetConfig('smollm2-135m', quick ? { num_hidden_layers: 4 } : {});
const lm = await CausalLM.fromWeights(cfg, newModel(cfg, 1), { threads, fused: process.env.LOOM_FUSED !== '0' });
const base = { bench: 'generate.smollm2', layers: cfg.numLayers, threads };
const prompt = (n: number): number[] => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % cfg.vocabSize);

let t0 = performance.now();
await generateIds(lm, [prompt(8)], { maxNewTokens: 2, temperature: 0, eosIds: [] }); // load + warm up
console.log(
  JSON.stringify({ ...base, phase: 'load_and_warmup', seconds: +((performance.now() - t0) / 1000).toFixed(2) }),
);

t0 = performance.now();
await generateIds(lm, [prompt(512)], { maxNewTokens: 1, temperature: 0, eosIds: [] });
const prefill = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ ...base, phase: 'prefill', tokens: 512, tokens_per_s: +(512 / prefill).toFixed(1) }));

t0 = performance.now();
await generateIds(lm, [prompt(32)], { maxNewTokens: 1, temperature: 0, eosIds: [] });
const first = performance.now() - t0;
t0 = performance.now();
const r = await generateIds(lm, [prompt(32)], { maxNewTokens: 129, temperature: 0, eosIds: [] });
const decode = (performance.now() - t0 - first) / 1000;
const n = (r[0]?.ids.length ?? 1) - 1;
console.log(
  JSON.stringify({ ...base, phase: 'decode', prompt: 32, new_tokens: n, tokens_per_s: +(n / decode).toFixed(1) }),
);
console.log(JSON.stringify({ ...base, phase: 'memory', peak_rss_mb: peakRssMb() }));
await lm.close();
