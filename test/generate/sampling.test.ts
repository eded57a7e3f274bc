import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import {
  applyPresenceFrequency,
  applyRepetitionPenalty,
  argmax,
  drawFrom,
  minPFilter,
  probabilities,
  Sampler,
  settingsFromGenerationConfig,
  softmax,
  topKFilter,
  topPFilter,
} from '../../src/generate/sampling.ts';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-12): void => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++)
    assert.ok(Math.abs((a[i] as number) - (b[i] as number)) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

// exp(1), exp(2), exp(3) normalised: e^i / (e + e^2 + e^3)
test('softmax and temperature', () => {
  close(softmax([1, 2, 3]), [0.09003057317038046, 0.24472847105479767, 0.6652409557748219]);
  // T = 0.5 is softmax([2, 4, 6])
  close(softmax([1, 2, 3], 0.5), [0.015876239976466765, 0.11731042782619838, 0.8668133321973349]);
  close(softmax([0, Number.NEGATIVE_INFINITY]), [1, 0]);
});

test('top-k keeps the k most probable and renormalises', () => {
  // e^2 / (e^2 + e^3) = 1 / (1 + e)
  close(topKFilter(softmax([1, 2, 3]), 2), [0, 1 / (1 + Math.E), Math.E / (1 + Math.E)]);
  close(topKFilter(softmax([1, 2, 3]), 0), [0.09003057317038046, 0.24472847105479767, 0.6652409557748219]);
});

test('top-p keeps the smallest head reaching p; min-p cuts below min_p x max', () => {
  const p = (): Float64Array => Float64Array.of(0.5, 0.3, 0.15, 0.05);
  close(topPFilter(p(), 0.75), [0.625, 0.375, 0, 0]);
  close(topPFilter(p(), 0.85), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]);
  close(topPFilter(p(), 0.1), [1, 0, 0, 0]);
  close(minPFilter(p(), 0.4), [0.625, 0.375, 0, 0]); // cut at 0.2
  close(minPFilter(p(), 0.2), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]); // cut at 0.1
  close(minPFilter(p(), 0.1), [0.5, 0.3, 0.15, 0.05]); // cut at 0.05: only strictly smaller tokens go (as in HF)
});

test('top-p on a large vocabulary matches a full sort', () => {
  const n = 5000;
  const logits = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 8);
  const p = softmax(logits);
  const got = topPFilter(Float64Array.from(p), 0.9);
  const order = [...p.keys()].sort((a, b) => (p[b] as number) - (p[a] as number));
  let cum = 0;
  const keep = new Set<number>();
  for (const i of order) {
    keep.add(i);
    cum += p[i] as number;
    if (cum >= 0.9) break;
  }
  for (let i = 0; i < n; i++) assert.equal((got[i] as number) > 0, keep.has(i), `token ${i}`);
});

test('repetition penalty divides positive and multiplies negative logits, once per distinct id', () => {
  const l = Float32Array.of(2, -2, 1, 4);
  applyRepetitionPenalty(l, [0, 1, 1, 1], 2);
  assert.deepEqual([...l], [1, -4, 1, 4]);
});

test('presence and frequency penalties follow the OpenAI formula', () => {
  const l = Float32Array.of(1, 1, 1);
  applyPresenceFrequency(l, [0, 0, 2], 0.5, 0.25);
  // token 0: 1 - 2*0.25 - 0.5 = 0; token 2: 1 - 0.25 - 0.5 = 0.25
  assert.deepEqual([...l], [0, 1, 0.25]);
});

test('greedy picks the first maximum; penalties can change it', () => {
  assert.equal(argmax([1, 3, 3, 2]), 1);
  const s = new Sampler({ temperature: 0 });
  assert.equal(s.next(Float32Array.of(1, 3, 2)), 1);
  const r = new Sampler({ temperature: 0, repetitionPenalty: 2 });
  // token 1 was seen: 3 / 2 = 1.5 < 2
  assert.equal(r.next(Float32Array.of(1, 3, 2), { prompt: [1] }), 2);
  const f = new Sampler({ temperature: 0, frequencyPenalty: 1 });
  assert.equal(f.next(Float32Array.of(1, 3, 2.5), { prompt: [1, 1], generated: [1] }), 2);
});

test('inverse-CDF draws', () => {
  const p = Float64Array.of(0.2, 0, 0.5, 0.3);
  assert.equal(drawFrom(p, 0.1), 0);
  assert.equal(drawFrom(p, 0.5), 2);
  assert.equal(drawFrom(p, 0.71), 3);
  assert.equal(drawFrom(p, 0.9999999999999999), 3);
});

test('seeded sampling is reproducible and follows the distribution', () => {
  const logits = Float32Array.from([0.2, 0.5, 0.3].map(Math.log));
  const run = (seed: number): number[] => {
    const s = new Sampler({ temperature: 1, seed });
    return Array.from({ length: 20000 }, () => s.next(logits));
  };
  const a = run(42);
  assert.deepEqual(a.slice(0, 50), run(42).slice(0, 50));
  assert.notDeepEqual(a.slice(0, 50), run(43).slice(0, 50));
  const freq = [0, 1, 2].map((k) => a.filter((x) => x === k).length / a.length);
  // 20000 draws: standard error <= 0.0036, allow ~4 sigma
  close(freq, [0.2, 0.5, 0.3], 0.015);
});

test('top-k / top-p / min-p compose in HF order', () => {
  const logits = Float32Array.from([0.4, 0.3, 0.2, 0.1].map(Math.log));
  // top-k 3 -> [4,3,2]/9; top-p 0.7 -> 4/9 + 3/9 = 0.78 >= 0.7 keeps two -> [4/7, 3/7]
  close(probabilities(logits, { topK: 3, topP: 0.7 }), [4 / 7, 3 / 7, 0, 0], 1e-7);
  // min-p 0.6 after top-k 3: max 4/9, cut 2.4/9 keeps 4/9 and 3/9
  close(probabilities(logits, { topK: 3, minP: 0.6 }), [4 / 7, 3 / 7, 0, 0], 1e-7);
});

test('invalid settings are CONFIG_INVALID', () => {
  assert.throws(
    () => new Sampler({ topP: 0 }),
    (e: unknown) => e instanceof LoomError && e.field === 'top_p',
  );
  assert.throws(
    () => new Sampler({ temperature: -1 }),
    (e: unknown) => e instanceof LoomError && e.field === 'temperature',
  );
});

test('generation_config.json defaults: greedy unless do_sample is true; HF keys map to settings', () => {
  assert.deepEqual(settingsFromGenerationConfig({ do_sample: false, temperature: 0.7 }), { temperature: 0 });
  assert.deepEqual(
    settingsFromGenerationConfig({
      do_sample: true,
      temperature: 0.6,
      top_k: 20,
      top_p: 0.95,
      repetition_penalty: 1.05,
    }),
    { temperature: 0.6, topK: 20, topP: 0.95, repetitionPenalty: 1.05 },
  );
  // transformers' GenerationConfig defaults: do_sample False (greedy) and, when sampling, top_k 50.
  assert.deepEqual(settingsFromGenerationConfig({ temperature: 0.7, top_p: 0.8, max_new_tokens: 64 }), {
    temperature: 0,
    maxNewTokens: 64,
  });
  assert.deepEqual(settingsFromGenerationConfig({ do_sample: true }), { temperature: 1, topK: 50 });
});
