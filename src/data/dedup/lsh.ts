/**
 * The LSH index: one open-addressing hash table per band (53-bit band key → newest row in that bucket) feeding a
 * union-find, so every pair of rows sharing any band bucket ends in one cluster (transitive closure, as datatrove
 * and text-dedup do). With `verify`, a candidate pair is joined only if its estimated Jaccard (fraction of equal
 * signature values) reaches the threshold; each bucket then keeps a chain of its rows and the newcomer is checked
 * against up to 32 of them that are not yet in its cluster.
 *
 * Memory is typed arrays only (no per-row JS objects): see `estimateLshMemory` for the figure per row.
 */
import type { NearDedupConfig } from '../../config/data-dedup.ts';
import { estimateJaccard } from './minhash.ts';
import { UnionFind } from './union-find.ts';

const EMPTY = -1;

/** Float64 key → int32 value, linear probing, load factor ≤ 1/2, doubling growth. 12 bytes per slot. */
class KeyTable {
  private keys: Float64Array;
  private vals: Int32Array;
  private mask: number;
  private count = 0;

  constructor(capacity = 1024) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.keys = new Float64Array(cap);
    this.vals = new Int32Array(cap).fill(EMPTY);
    this.mask = cap - 1;
  }

  private slot(key: number): number {
    // Low 32 bits of the key are the low bits of an fmix32 output mixed with the high hash: well spread.
    let i = ((key >>> 0) ^ Math.floor(key / 4294967296)) & this.mask;
    while (this.vals[i]! !== EMPTY && this.keys[i]! !== key) i = (i + 1) & this.mask;
    return i;
  }

  get(key: number): number {
    return this.vals[this.slot(key)]!;
  }

  set(key: number, val: number): void {
    const i = this.slot(key);
    if (this.vals[i]! === EMPTY) {
      this.keys[i] = key;
      this.vals[i] = val;
      if (++this.count * 2 > this.keys.length) this.grow();
    } else this.vals[i] = val;
  }

  private grow(): void {
    const oldK = this.keys;
    const oldV = this.vals;
    this.keys = new Float64Array(oldK.length * 2);
    this.vals = new Int32Array(oldK.length * 2).fill(EMPTY);
    this.mask = this.keys.length - 1;
    for (let i = 0; i < oldK.length; i++) {
      if (oldV[i]! !== EMPTY) {
        const j = this.slot(oldK[i]!);
        this.keys[j] = oldK[i]!;
        this.vals[j] = oldV[i]!;
      }
    }
  }

  bytes(): number {
    return this.keys.byteLength + this.vals.byteLength;
  }
}

/** The LSH index a near-dedup config asks for: one set-up for the single run and the cross-shard merge. */
export function nearDedupIndex(cfg: NearDedupConfig): LshIndex {
  return new LshIndex({
    bands: cfg.bands,
    rowsPerBand: cfg.rows_per_band,
    numPerm: cfg.num_perm,
    verifyThreshold: cfg.verify ? cfg.threshold : undefined,
  });
}

export interface LshOptions {
  bands: number;
  rowsPerBand: number;
  numPerm: number;
  /** Estimated-Jaccard threshold for candidate pairs; undefined = join every candidate pair. */
  verifyThreshold?: number;
}

const MAX_CHAIN_CHECKS = 32;

class LshIndex {
  readonly uf = new UnionFind();
  private readonly tables: KeyTable[];
  private chain: Int32Array | undefined;
  private sigs: Int32Array | undefined;
  /** Candidate pairs seen, and how many were rejected by verification. */
  candidates = 0;
  rejected = 0;

  constructor(readonly opts: LshOptions) {
    this.tables = Array.from({ length: opts.bands }, () => new KeyTable());
    if (opts.verifyThreshold !== undefined) {
      this.chain = new Int32Array(1024 * opts.bands);
      this.sigs = new Int32Array(1024 * opts.numPerm);
    }
  }

  get size(): number {
    return this.uf.size;
  }

  /**
   * Adds the next row (index = previous size). `keys` are its band keys, or null for a row without shingles
   * (it stays a singleton). `sig` is needed only when verifying.
   */
  add(keys: Float64Array | null, sig?: Int32Array): number {
    const row = this.uf.add();
    const { bands, numPerm, verifyThreshold } = this.opts;
    if (this.chain && this.sigs) {
      if ((row + 1) * bands > this.chain.length) {
        const c = new Int32Array(this.chain.length * 2);
        c.set(this.chain);
        this.chain = c;
        const s = new Int32Array(this.sigs.length * 2);
        s.set(this.sigs);
        this.sigs = s;
      }
      this.chain.fill(EMPTY, row * bands, (row + 1) * bands);
      if (sig) this.sigs.set(sig.subarray(0, numPerm), row * numPerm);
    }
    if (!keys) return row;
    for (let b = 0; b < bands; b++) {
      const table = this.tables[b]!;
      const key = keys[b]!;
      const head = table.get(key);
      if (head !== EMPTY) {
        this.candidates++;
        if (verifyThreshold === undefined || !this.chain || !this.sigs) this.uf.union(head, row);
        else {
          const mine = this.sigs.subarray(row * numPerm, (row + 1) * numPerm);
          let m = head;
          // Walk the whole chain (up to a cap): a bucket can hold rows of several clusters that failed
          // verification against each other, and the newcomer may bridge them.
          for (let checks = 0; m !== EMPTY && checks < MAX_CHAIN_CHECKS; m = this.chain[m * bands + b]!) {
            if (this.uf.find(m) === this.uf.find(row)) continue;
            checks++;
            const other = this.sigs.subarray(m * numPerm, (m + 1) * numPerm);
            if (estimateJaccard(mine, other) >= verifyThreshold) this.uf.union(m, row);
            else this.rejected++;
          }
          this.chain[row * bands + b] = head;
        }
      }
      table.set(key, row);
    }
    return row;
  }

  /** Signature of a row (verify mode only). */
  signature(row: number): Int32Array | undefined {
    const n = this.opts.numPerm;
    return this.sigs?.subarray(row * n, (row + 1) * n);
  }

  bytes(): number {
    let t = this.uf.bytes();
    for (const tb of this.tables) t += tb.bytes();
    return t + (this.chain?.byteLength ?? 0) + (this.sigs?.byteLength ?? 0);
  }
}

export interface LshMemoryEstimate {
  rows: number;
  bytes: number;
  bytesPerRow: number;
  /** Human-readable, e.g. "1.2 GiB for 3,000,000 rows (430 B/row)". */
  text: string;
  breakdown: Record<string, number>;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Memory the near-dedup index will need for `rows` rows (worst case, just after a table doubled; the transient
 * copy during a doubling adds up to half of one band table). Per row: each band table 12 B/slot at load 1/4..1/2
 * (≤ 48 B), union-find 4 B, keep-policy bookkeeping 16 B (order + length/quality), the row id string (~56 B
 * assumed), and with `verify` the signature (4 B per permutation) plus bucket chains (4 B per band).
 */
export function estimateLshMemory(
  rows: number,
  cfg: Pick<NearDedupConfig, 'bands' | 'num_perm' | 'verify'> = { bands: 14, num_perm: 112, verify: false },
): LshMemoryEstimate {
  // Allocated sizes, not just the rows: each band table starts at 2,048 slots and doubles past half full; the
  // union-find, signatures and bucket chains start at 1,024 rows and double when full. So the estimate is an
  // upper bound also for small inputs, where the initial allocations dominate.
  let cap = 2048;
  while (cap < rows * 2) cap *= 2;
  let rowCap = 1024;
  while (rowCap < rows) rowCap *= 2;
  const breakdown: Record<string, number> = {
    band_tables: cfg.bands * cap * 12,
    union_find: rowCap * 4,
    keep_policy: rows * 16,
    row_ids: rows * 56,
  };
  if (cfg.verify) {
    breakdown.signatures = rowCap * cfg.num_perm * 4;
    breakdown.chains = rowCap * cfg.bands * 4;
  }
  const bytes = Object.values(breakdown).reduce((a, b) => a + b, 0);
  const bytesPerRow = rows > 0 ? bytes / rows : 0;
  return {
    rows,
    bytes,
    bytesPerRow,
    breakdown,
    text: `${formatBytes(bytes)} for ${rows.toLocaleString('en-US')} rows (${Math.round(bytesPerRow)} B/row)`,
  };
}
