/** Training's seeded draws: the generator lives in core/rng.ts; the epoch order is defined here. */
import { Rng } from '../core/rng.ts';

export { Rng, type RngState } from '../core/rng.ts';

/** Fisher-Yates permutation of 0..n-1 for one epoch: a function of (seed, epoch) only, so order never depends on history. */
export function epochPermutation(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng((seed * 1000003 + epoch * 7919) >>> 0);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
