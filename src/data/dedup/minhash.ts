/**
 * MinHash signatures and LSH band keys in 32-bit integer arithmetic.
 *
 * Permutation i maps a shingle hash x to (a_i * x + b_i) mod 2^32 with a_i odd (a bijection on 32-bit values;
 * multiply-add hashing whose high bits are 2-universal), computed with Math.imul; the minimum is taken in signed
 * int32 order, which is just another fixed total order, so the estimator is unchanged. Shingle hashes are already
 * avalanche-mixed (fmix32), which is what makes a linear family good enough here; text-dedup and NeMo Curator
 * also use 32-bit hashing (see docs/data.md, "Hashing"). The bench (bench/data/minhash.ts) measures throughput and
 * the test suite checks the Jaccard estimate against exact Jaccard of constructed sets.
 *
 *   makePermutations(numPerm, seed)        → { a, b } (same seed ⇒ same signatures on every machine/shard)
 *   minhashSignature(hashes, perms, out?)  → Int32Array(numPerm)
 *   bandKeys(sig, bands, rows, out?)       → Float64Array(bands) of 53-bit keys (two 32-bit band hashes)
 *   estimateJaccard(sigA, sigB)            → fraction of equal positions
 */
import { fmix32, mulberry32 } from './hash.ts';

export interface Permutations {
  a: Int32Array;
  b: Int32Array;
}

export function makePermutations(numPerm: number, seed: number): Permutations {
  const rnd = mulberry32(seed ^ 0x1b873593);
  const a = new Int32Array(numPerm);
  const b = new Int32Array(numPerm);
  for (let i = 0; i < numPerm; i++) {
    a[i] = Math.floor(rnd() * 4294967296) | 1 | 0;
    b[i] = Math.floor(rnd() * 4294967296) | 0;
  }
  return { a, b };
}

const INT32_MAX = 0x7fffffff;

export function minhashSignature(hashes: Int32Array, perms: Permutations, out?: Int32Array): Int32Array {
  const k = perms.a.length;
  const sig = out ?? new Int32Array(k);
  const m = hashes.length;
  const A = perms.a;
  const B = perms.b;
  for (let i = 0; i < k; i++) {
    const a = A[i]!;
    const b = B[i]!;
    let min = INT32_MAX;
    for (let j = 0; j < m; j++) {
      const v = (Math.imul(a, hashes[j]!) + b) | 0;
      if (v < min) min = v;
    }
    sig[i] = min;
  }
  return sig;
}

export function bandKeys(sig: Int32Array, bands: number, rows: number, out?: Float64Array): Float64Array {
  const keys = out ?? new Float64Array(bands);
  for (let bi = 0; bi < bands; bi++) {
    let h1 = 0x3c6ef372 ^ bi;
    let h2 = 0x6a09e667 ^ Math.imul(bi, 0x27d4eb2f);
    const base = bi * rows;
    for (let r = 0; r < rows; r++) {
      const v = sig[base + r]!;
      h1 = Math.imul(h1 ^ v, 0x9e3779b1);
      h1 = (h1 << 15) | (h1 >>> 17);
      h2 = Math.imul(h2 ^ v, 0x85ebca77);
      h2 = (h2 << 11) | (h2 >>> 21);
    }
    keys[bi] = (fmix32(h1) >>> 0) * 2097152 + (fmix32(h2) >>> 11);
  }
  return keys;
}

export function estimateJaccard(x: Int32Array, y: Int32Array): number {
  const n = Math.min(x.length, y.length);
  if (n === 0) return 0;
  let eq = 0;
  for (let i = 0; i < n; i++) if (x[i] === y[i]) eq++;
  return eq / n;
}

/** Probability that a pair with Jaccard s becomes an LSH candidate: 1 - (1 - s^r)^b. */
export function candidateProbability(s: number, bands: number, rows: number): number {
  return 1 - (1 - s ** rows) ** bands;
}
