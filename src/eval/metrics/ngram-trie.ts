/**
 * Per-segment n-gram trie over small integer ids (characters for chrF, tokens for BLEU). Every distinct n-gram of
 * the segment (hypothesis and references together) becomes a dense node id whose depth is its order, so clipped
 * n-gram matching is array work instead of hashing strings. Small segments index one shared flat edge table
 * (reset after use); large ones fall back to a Map.
 */

/** Edges parent * K + id → child (0 = none; children are ≥ 1). Shared; every trie clears what it touched. */
const EDGE_TABLE = new Int32Array(1 << 20);

export class NgramTrie {
  readonly depth: number[] = [0];
  private readonly edges = new Map<number, number>();
  private readonly touched: number[] = [];
  private readonly flat: boolean;
  private readonly maxOrder: number;
  private readonly K: number;

  /** ids must lie in 1..K-1; totalLen bounds the number of nodes (sum of all sequence lengths). */
  constructor(maxOrder: number, K: number, totalLen: number) {
    this.maxOrder = maxOrder;
    this.K = K;
    this.flat = (1 + totalLen * maxOrder) * K <= EDGE_TABLE.length;
  }

  get size(): number {
    return this.depth.length;
  }

  /** Node id of every n-gram occurrence (orders 1..maxOrder at each start position). */
  occurrences(ids: ArrayLike<number>): Int32Array {
    const len = ids.length;
    const maxOrder = this.maxOrder;
    const K = this.K;
    let total = 0;
    for (let i = 0; i < len; i++) total += Math.min(len - i, maxOrder);
    const occ = new Int32Array(total);
    let w = 0;
    for (let i = 0; i < len; i++) {
      let node = 0;
      const last = Math.min(len - i, maxOrder);
      for (let n = 0; n < last; n++) {
        const key = node * K + ids[i + n];
        let child: number | undefined;
        if (this.flat) {
          child = EDGE_TABLE[key];
          if (child === 0) {
            child = this.depth.length;
            this.depth.push(n + 1);
            EDGE_TABLE[key] = child;
            this.touched.push(key);
          }
        } else {
          child = this.edges.get(key);
          if (child === undefined) {
            child = this.depth.length;
            this.depth.push(n + 1);
            this.edges.set(key, child);
          }
        }
        occ[w++] = child;
        node = child;
      }
    }
    return occ;
  }

  /** Clears the shared edge table; call once the segment's occurrences are taken. */
  release(): void {
    for (const k of this.touched) EDGE_TABLE[k] = 0;
    this.touched.length = 0;
  }
}
