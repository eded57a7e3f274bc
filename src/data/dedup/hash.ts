/**
 * Small, fast, non-cryptographic hashing for dedup and split, in 32-bit integer arithmetic (Math.imul), so no
 * BigInt and no native calls on the hot path.
 *
 *   fmix32(h)              MurmurHash3's finaliser: a bijection on 32-bit values with full avalanche.
 *   hashString32(s, seed)  MurmurHash3-style hash of a string's UTF-16 code units (two units per block).
 *   hash53(s)              two independent 32-bit hashes packed into one safe integer (< 2^53): Map keys for
 *                          exact dedup and line counting; collision odds ~N^2 / 2^54 (5e-3 at 10M rows).
 *   mulberry32(seed)       deterministic PRNG returning floats in [0, 1).
 */

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

export function hashString32(s: string, seed = 0): number {
  let h = seed | 0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  return fmix32(h ^ n);
}

export function hash53(s: string): number {
  const a = hashString32(s, 0x9747b28c) >>> 0;
  const b = hashString32(s, 0x2545f491) >>> 11;
  return a * 2097152 + b;
}

export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
