/**
 * Next-token selection from logits, in plain TypeScript (independent of the engine).
 *
 * API:
 *   new Sampler(settings)              settings: temperature (0 = greedy), topK, topP, minP, repetitionPenalty,
 *                                      presencePenalty, frequencyPenalty, seed (default 0: reproducible)
 *   sampler.next(logits, { prompt?, generated? }) -> token id
 *   processLogits(logits, settings, { prompt, generated }) -> Float32Array   penalties applied (copy)
 *   settingsFromGenerationConfig(json) -> SamplingSettings   defaults from a model's generation_config.json
 *   probabilities(logits, settings)   -> Float64Array  the distribution sampled from (after temperature, top-k,
 *                                      top-p, min-p; zeros for removed tokens)
 *   Pieces, exported for tests and other callers: applyRepetitionPenalty, applyPresenceFrequency, softmax,
 *   topKFilter, topPFilter, minPFilter, argmax. Random draws come from core/rng.ts (mulberry32).
 *
 * A TokenHook (settings.hook) constrains and observes the choice: `allow(id)` rejects tokens (constrained decoding,
 * e.g. serve's JSON mode), `chosen(id, logits)` is told each pick with the raw model logits (logprobs).
 *
 * Order follows transformers' generate(): penalties on raw logits, then temperature, top-k, top-p, min-p.
 * Repetition penalty (HF/CTRL style) looks at prompt + generated ids: positive logits are divided by the penalty,
 * negative ones multiplied. Presence/frequency penalties (OpenAI style) look at generated ids only:
 * logit -= frequency * count + presence * (count > 0).
 */
import { LoomError } from '../core/errors.ts';
import { Mulberry32 } from '../core/rng.ts';

/** Per-request constraint and observer of token choices (one Sampler per row; see Sampler.next). */
export interface TokenHook {
  /** false = the token may not come next. Checked lazily on the model's picks, so it should be cheap. */
  allow?(id: number): boolean;
  /** The token chosen, with the raw model logits it was chosen from (before penalties, temperature, filters). */
  chosen?(id: number, logits: Float32Array): void;
}

export interface SamplingSettings {
  /** 0 (or below) picks the argmax; default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
  hook?: TokenHook;
}

export interface TokenHistory {
  prompt?: readonly number[];
  generated?: readonly number[];
}

function validateSettings(s: SamplingSettings): void {
  const bad = (field: string, why: string): never => {
    throw new LoomError('CONFIG_INVALID', `${field} ${why}`, { field });
  };
  if (s.temperature !== undefined && !(s.temperature >= 0)) bad('temperature', 'must be >= 0');
  if (s.topK !== undefined && !(Number.isInteger(s.topK) && s.topK >= 0)) bad('top_k', 'must be an integer >= 0');
  if (s.topP !== undefined && !(s.topP > 0 && s.topP <= 1)) bad('top_p', 'must be in (0, 1]');
  if (s.minP !== undefined && !(s.minP >= 0 && s.minP <= 1)) bad('min_p', 'must be in [0, 1]');
  if (s.repetitionPenalty !== undefined && !(s.repetitionPenalty > 0)) bad('repetition_penalty', 'must be > 0');
  if (s.presencePenalty !== undefined && !(Math.abs(s.presencePenalty) <= 2))
    bad('presence_penalty', 'must be in [-2, 2]');
  if (s.frequencyPenalty !== undefined && !(Math.abs(s.frequencyPenalty) <= 2))
    bad('frequency_penalty', 'must be in [-2, 2]');
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  let bv = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** In place; each distinct id is penalised once, whatever its count (as HF does). */
export function applyRepetitionPenalty(logits: Float32Array, ids: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(ids)) {
    if (id < 0 || id >= logits.length) continue;
    const v = logits[id] as number;
    logits[id] = v > 0 ? v / penalty : v * penalty;
  }
}

/** In place; OpenAI's formula with counts of each id among the generated tokens. */
export function applyPresenceFrequency(
  logits: Float32Array,
  generated: Iterable<number>,
  presence: number,
  frequency: number,
): void {
  if (!presence && !frequency) return;
  const counts = new Map<number, number>();
  for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, c] of counts) {
    if (id < 0 || id >= logits.length) continue;
    logits[id] = (logits[id] as number) - frequency * c - presence;
  }
}

/** softmax(logits / temperature) in float64, -Infinity logits give 0. */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const p = new Float64Array(logits.length);
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if ((logits[i] as number) > max) max = logits[i] as number;
  let sum = 0;
  const inv = 1 / temperature;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(((logits[i] as number) - max) * inv);
    p[i] = e;
    sum += e;
  }
  const invSum = 1 / sum;
  for (let i = 0; i < p.length; i++) p[i] = (p[i] as number) * invSum;
  return p;
}

function renormalise(p: Float64Array): Float64Array {
  let s = 0;
  for (let i = 0; i < p.length; i++) s += p[i] as number;
  for (let i = 0; i < p.length; i++) p[i] = (p[i] as number) / s;
  return p;
}

/** Keeps the k most probable tokens (all tokens tied with the k-th stay, as with HF's threshold test). In place. */
export function topKFilter(p: Float64Array, k: number): Float64Array {
  if (k <= 0 || k >= p.length) return p;
  const kth = kthLargest(p, k);
  for (let i = 0; i < p.length; i++) if ((p[i] as number) < kth) p[i] = 0;
  return renormalise(p);
}

/** The k-th largest value: a size-k min-heap for small k (O(n log k)), a sort otherwise. */
function kthLargest(x: Float64Array, k: number): number {
  if (k > 256) return Float64Array.from(x).sort()[x.length - k] as number;
  const heap = new Float64Array(k);
  let size = 0;
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && (heap[l] as number) < (heap[m] as number)) m = l;
      if (r < size && (heap[r] as number) < (heap[m] as number)) m = r;
      if (m === i) return;
      const t = heap[i] as number;
      heap[i] = heap[m] as number;
      heap[m] = t;
      i = m;
    }
  };
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (size < k) {
      let j = size++;
      heap[j] = v;
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if ((heap[parent] as number) <= (heap[j] as number)) break;
        const t = heap[parent] as number;
        heap[parent] = heap[j] as number;
        heap[j] = t;
        j = parent;
      }
    } else if (v > (heap[0] as number)) {
      heap[0] = v;
      siftDown(0);
    }
  }
  return heap[0] as number;
}

/** Smallest set of most probable tokens whose mass reaches topP (at least one). In place. */
export function topPFilter(p: Float64Array, topP: number): Float64Array {
  if (topP >= 1) return p;
  // Only tokens above a threshold t whose total mass already reaches topP can be in the nucleus, so lower t
  // by decades until it does, then sort just those (a few hundred, not the whole vocabulary).
  let max = 0;
  for (let i = 0; i < p.length; i++) if ((p[i] as number) > max) max = p[i] as number;
  let t = max * 0.1;
  for (;;) {
    let mass = 0;
    for (let i = 0; i < p.length; i++) if ((p[i] as number) > t) mass += p[i] as number;
    if (mass >= topP || t === 0) break;
    t = t < 1e-300 ? 0 : t * 0.1;
  }
  const idx: number[] = [];
  for (let i = 0; i < p.length; i++) if ((p[i] as number) > t) idx.push(i);
  idx.sort((a, b) => (p[b] as number) - (p[a] as number) || a - b);
  const keep = new Uint8Array(p.length);
  let cum = 0;
  for (const i of idx) {
    keep[i] = 1;
    cum += p[i] as number;
    if (cum >= topP) break;
  }
  for (let i = 0; i < p.length; i++) if (!keep[i]) p[i] = 0;
  return renormalise(p);
}

/** Drops tokens whose probability is below minP x the top probability. In place. */
export function minPFilter(p: Float64Array, minP: number): Float64Array {
  if (minP <= 0) return p;
  let max = 0;
  for (let i = 0; i < p.length; i++) if ((p[i] as number) > max) max = p[i] as number;
  const cut = minP * max;
  for (let i = 0; i < p.length; i++) if ((p[i] as number) < cut) p[i] = 0;
  return renormalise(p);
}

/** Logits with repetition / presence / frequency penalties applied (a copy). */
function processLogits(logits: Float32Array, s: SamplingSettings, h: TokenHistory = {}): Float32Array {
  const out = logits.slice();
  const generated = h.generated ?? [];
  if (s.repetitionPenalty !== undefined && s.repetitionPenalty !== 1) {
    applyRepetitionPenalty(out, [...(h.prompt ?? []), ...generated], s.repetitionPenalty);
  }
  applyPresenceFrequency(out, generated, s.presencePenalty ?? 0, s.frequencyPenalty ?? 0);
  return out;
}

/** The distribution sampled from, given already-penalised logits. */
export function probabilities(logits: ArrayLike<number>, s: SamplingSettings): Float64Array {
  const t = s.temperature ?? 1;
  let p = softmax(logits, t);
  if (s.topK) p = topKFilter(p, s.topK);
  if (s.topP !== undefined && s.topP < 1) p = topPFilter(p, s.topP);
  if (s.minP) p = minPFilter(p, s.minP);
  return p;
}

/** Inverse-CDF draw with a uniform u in [0, 1). */
export function drawFrom(p: Float64Array, u: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    const v = p[i] as number;
    if (v <= 0) continue;
    cum += v;
    last = i;
    if (u < cum) return i;
  }
  return last; // rounding left cum a hair under 1
}

export class Sampler {
  readonly settings: SamplingSettings;
  private readonly rng: Mulberry32;

  constructor(settings: SamplingSettings = {}) {
    validateSettings(settings);
    this.settings = settings;
    this.rng = new Mulberry32(settings.seed ?? 0);
  }

  get greedy(): boolean {
    return (this.settings.temperature ?? 1) <= 0;
  }

  /** One token id from one row of logits. */
  next(logits: Float32Array, history: TokenHistory = {}): number {
    const l = processLogits(logits, this.settings, history);
    const hook = this.settings.hook;
    const id = hook?.allow ? this.constrained(l, hook.allow) : this.pick(l);
    hook?.chosen?.(id, logits);
    return id;
  }

  private pick(l: Float32Array): number {
    return this.greedy ? argmax(l) : drawFrom(probabilities(l, this.settings), this.rng.next());
  }

  /**
   * Rejection: a forbidden pick is removed and the choice made again with a fresh draw, which samples exactly
   * the distribution renormalised over the allowed tokens (greedy: the best allowed token) without testing the
   * whole vocabulary each step. After 16 rejections every token is tested once and the forbidden ones removed.
   */
  private constrained(l: Float32Array, allow: (id: number) => boolean): number {
    for (let tries = 0; ; tries++) {
      if (tries === 16) {
        let left = 0;
        for (let i = 0; i < l.length; i++) {
          if (l[i] === Number.NEGATIVE_INFINITY) continue;
          if (allow(i)) left++;
          else l[i] = Number.NEGATIVE_INFINITY;
        }
        if (left === 0)
          throw new LoomError('RUNTIME', 'constrained decoding: no token of the vocabulary may come next', {
            hint: 'the constraint (e.g. JSON mode) needs tokens this vocabulary does not have',
          });
      }
      const id = this.pick(l);
      if (allow(id)) return id;
      l[id] = Number.NEGATIVE_INFINITY;
    }
  }
}

/**
 * A model's recommended defaults from generation_config.json, with transformers' meaning: sampling only when
 * `do_sample` is true (absent means greedy), then `temperature` (default 1), `top_k` (default 50, as in
 * transformers), `top_p`, `min_p`; `repetition_penalty` and `max_new_tokens` apply either way. Callers spread
 * their own settings over the result: `{ ...settingsFromGenerationConfig(gen), ...userSettings }`.
 */
export function settingsFromGenerationConfig(
  gen: Record<string, unknown>,
): SamplingSettings & { maxNewTokens?: number } {
  const num = (k: string): number | undefined => (typeof gen[k] === 'number' ? (gen[k] as number) : undefined);
  const out: SamplingSettings & { maxNewTokens?: number } = {};
  const set = <K extends keyof typeof out>(k: K, v: (typeof out)[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  if (gen.do_sample === true) {
    set('temperature', num('temperature') ?? 1);
    set('topK', num('top_k') ?? 50);
    set('topP', num('top_p'));
    set('minP', num('min_p'));
  } else out.temperature = 0;
  set('repetitionPenalty', num('repetition_penalty'));
  set('maxNewTokens', num('max_new_tokens'));
  return out;
}
