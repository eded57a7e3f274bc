/**
 * Turns union-find sets into keep/drop decisions under a keep policy:
 *   first    the earliest row (lowest index) of each cluster is kept;
 *   longest  the row with the most characters is kept (ties: earliest);
 *   quality  the row with the highest numeric meta field is kept (missing/non-numeric = -Infinity; ties: earliest).
 */
import type { KeepPolicy } from '../../config/data-dedup.ts';
import type { UnionFind } from './union-find.ts';

export interface ClusterDecisions {
  /** For each row, the index of the row kept for its cluster (itself when kept). */
  keeper: Int32Array;
  /** For each row, the size of its cluster. */
  size: Int32Array;
  clusters: number;
  duplicates: number;
}

/**
 * `score(i)` is consulted for `longest` / `quality`; higher wins. Only rows for which `eligible(i)` holds can be
 * kept (the shard merge uses this for rows that a shard already dropped); a cluster without an eligible row gets
 * keeper -1.
 */
export function decideClusters(
  uf: UnionFind,
  n: number,
  policy: KeepPolicy,
  score: (i: number) => number,
  eligible?: (i: number) => boolean,
): ClusterDecisions {
  const best = new Int32Array(n).fill(-1);
  const count = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    count[r]!++;
    if (eligible && !eligible(i)) continue;
    const b = best[r]!;
    if (b < 0) best[r] = i;
    else if (policy !== 'first' && score(i) > score(b)) best[r] = i;
  }
  const keeper = new Int32Array(n);
  const size = new Int32Array(n);
  let clusters = 0;
  let duplicates = 0;
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    keeper[i] = best[r]!;
    size[i] = count[r]!;
    if (r === i && count[r]! > 1) {
      clusters++;
      duplicates += count[r]! - 1;
    }
  }
  return { keeper, size, clusters, duplicates };
}

/** Keep-policy score of a row: its length, or its numeric quality field (-Infinity when absent). */
export function policyScore(policy: KeepPolicy, length: number, meta: Record<string, unknown>, field: string): number {
  if (policy === 'longest') return length;
  if (policy === 'quality') {
    const v = meta[field];
    const x = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    return Number.isFinite(x) ? x : Number.NEGATIVE_INFINITY;
  }
  return 0;
}
