/**
 * Cost of choosing one token in TypeScript for a Qwen-sized vocabulary (151,936): greedy, and sampling with
 * the usual settings. Prints one JSON line per configuration. Usage: npx tsx bench/generate/sampling.ts
 */
import { Sampler, type SamplingSettings } from '../../src/generate/sampling.ts';

const V = 151936;
const logits = new Float32Array(V);
let s = 1;
for (let i = 0; i < V; i++) {
  s = (s * 1103515245 + 12345) >>> 0;
  // Roughly what a trained model gives: most logits far below the top few.
  logits[i] = ((s / 4294967296) * 2 - 1) * 4 - (i % 97 === 0 ? 0 : 6);
}
const history = Array.from({ length: 512 }, (_, i) => (i * 7919) % V);

const configs: Record<string, SamplingSettings> = {
  greedy: { temperature: 0 },
  temperature: { temperature: 0.8 },
  'top-k 50': { temperature: 0.8, topK: 50 },
  'top-p 0.9': { temperature: 0.8, topP: 0.9 },
  'qwen defaults (t 0.7, top-k 20, top-p 0.8, rep 1.05)': {
    temperature: 0.7,
    topK: 20,
    topP: 0.8,
    repetitionPenalty: 1.05,
  },
  'min-p 0.05 + presence/frequency': { temperature: 1, minP: 0.05, presencePenalty: 0.5, frequencyPenalty: 0.5 },
};
for (const [name, cfg] of Object.entries(configs)) {
  const sampler = new Sampler({ ...cfg, seed: 1 });
  for (let i = 0; i < 5; i++) sampler.next(logits, { prompt: history, generated: history.slice(0, 64) });
  const n = 50;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sampler.next(logits, { prompt: history, generated: history.slice(0, 64) });
  const ms = (performance.now() - t0) / n;
  console.log(JSON.stringify({ bench: 'sampling', vocab: V, config: name, ms_per_token: Number(ms.toFixed(3)) }));
}
