/**
 * Text → (MinHash signature, LSH band keys) for a batch of texts, the unit of work a hashing worker runs.
 * Same parameters (shingle sizes, num_perm, bands, rows, seed) give the same output on any machine.
 */
import type { NearDedupConfig } from '../../config/data-dedup.ts';
import { bandKeys, makePermutations, minhashSignature } from './minhash.ts';
import { shingleHashes } from './shingle.ts';

export interface SignParams {
  shingleWords: number;
  shingleChars: number;
  numPerm: number;
  bands: number;
  rowsPerBand: number;
  seed: number;
}

export interface SignedBatch {
  /** numPerm values per text. */
  sigs: Int32Array;
  /** `bands` 53-bit keys per text. */
  keys: Float64Array;
  /** Shingles per text; 0 means the text has no tokens and must not be clustered. */
  shingles: Int32Array;
}

export function signParamsOf(cfg: NearDedupConfig): SignParams {
  return {
    shingleWords: cfg.shingle_words,
    shingleChars: cfg.shingle_chars,
    numPerm: cfg.num_perm,
    bands: cfg.bands,
    rowsPerBand: cfg.rows_per_band,
    seed: cfg.seed,
  };
}

export function makeBatchSigner(p: SignParams): (texts: readonly string[]) => SignedBatch {
  const perms = makePermutations(p.numPerm, p.seed);
  const opts = { shingleWords: p.shingleWords, shingleChars: p.shingleChars };
  return (texts) => {
    const n = texts.length;
    const sigs = new Int32Array(n * p.numPerm);
    const keys = new Float64Array(n * p.bands);
    const shingles = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const sh = shingleHashes(texts[i]!, opts);
      shingles[i] = sh.hashes.length;
      if (sh.hashes.length === 0) continue;
      const sig = minhashSignature(sh.hashes, perms, sigs.subarray(i * p.numPerm, (i + 1) * p.numPerm));
      bandKeys(sig, p.bands, p.rowsPerBand, keys.subarray(i * p.bands, (i + 1) * p.bands));
    }
    return { sigs, keys, shingles };
  };
}
