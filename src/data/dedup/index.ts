/**
 * Dedup part of the data stage (library API):
 *   exactDedupStep(cfg)       exact duplicates of normalised text, keep first        (./exact.ts)
 *   nearDedupStep(cfg)        MinHash-LSH near duplicates, keep first/longest/quality (./near.ts)
 *   boilerplateStep(cfg)      lines repeated across many rows removed                 (./boilerplate.ts)
 *   estimateLshMemory(rows)   memory the near-dedup index needs                       (./lsh.ts)
 * Split and scale-out live in ../split.ts and ../shard.ts.
 */
export { boilerplateStep } from './boilerplate.ts';
export { exactDedupStep, exactKey } from './exact.ts';
export { estimateLshMemory, formatBytes, type LshMemoryEstimate } from './lsh.ts';
export { candidateProbability, estimateJaccard } from './minhash.ts';
export { type BandRecord, type NearDedupInput, nearDedupStep } from './near.ts';
export { shingleHashes, tokensOf } from './shingle.ts';
