/**
 * Train / validation / test split: by ratio or by count, seeded, optionally stratified by label, and leak-free.
 *
 *   planSplits(items, cfg)            → SplitName[]   pure, in memory: items carry a label and group keys
 *   assignSplits(rows, cfg, { tmpDir }) → AsyncIterable<{ split, row }>   two passes over a spill file, for the
 *                                       pipeline runner; row order is kept
 *
 * Leak-free: rows that share a group key end in the same split. assignSplits gives each row two keys: its
 * near-dup cluster (`meta.dup_cluster`, set by nearDedupStep) and the hash of its normalised text (lowercased,
 * whitespace collapsed), so exact duplicates stay together even when dedup did not run. Keys are joined with a
 * union-find, so chains (A~B by cluster, B=C by text) form one group.
 *
 * Allocation: targets per split come from the ratios (largest-remainder rounding, per stratum when stratified) or
 * from counts (validation/test counts, train takes the rest; stratified counts are spread over labels in
 * proportion to their size). Groups are shuffled with a seeded PRNG (mulberry32) and each goes to the split whose
 * target is least filled (relative deficit; ties: train, validation, test). With single-row groups the targets are
 * met exactly; a large group can overshoot its split by at most its size. A stratified group takes the label of
 * its first row.
 */
import { type SplitConfig, splitConfig } from '../config/data-dedup.ts';
import { LoomError } from '../core/errors.ts';
import type { DataRow } from '../core/types.ts';
import { exactKey } from './dedup/exact.ts';
import { hash53, hashString32, mulberry32 } from './dedup/hash.ts';
import { RowSpill } from './dedup/spill.ts';
import { UnionFind } from './dedup/union-find.ts';
import { rowText } from './step.ts';

export const SPLITS = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface SplitItem {
  label?: string;
  /** Items sharing any key land in the same split. */
  keys?: readonly (string | number)[];
}

export interface SplitSummary {
  counts: Record<SplitName, number>;
  /** Rows per label per split (only when stratified). */
  byLabel?: Record<string, Record<SplitName, number>>;
  groups: number;
}

/** Largest-remainder rounding of `total * shares[i]` (shares sum to 1); ties go to the earlier split. */
function apportion(total: number, shares: readonly number[]): number[] {
  const raw = shares.map((s) => total * s);
  const out = raw.map((x) => Math.floor(x + 1e-9));
  let rest = total - out.reduce((a, b) => a + b, 0);
  const order = raw.map((x, i) => ({ i, frac: x - Math.floor(x + 1e-9) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; rest > 0; k = (k + 1) % order.length, rest--) out[order[k]!.i]!++;
  return out;
}

function shuffle<T>(xs: T[], rnd: () => number): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = xs[i]!;
    xs[i] = xs[j]!;
    xs[j] = t;
  }
}

type SplitInput = Partial<SplitConfig>;

/** Plans the split of `n` rows given their labels (index → label) and a union-find of their groups. */
function plan(n: number, labelOf: (i: number) => string | undefined, uf: UnionFind, cfg: SplitConfig): SplitName[] {
  // Groups in first-appearance order, each with its member count and stratum.
  const groupOf = new Int32Array(n).fill(-1);
  const groupSize: number[] = [];
  const groupLabel: string[] = [];
  const rootGroup = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    let g = rootGroup.get(r);
    if (g === undefined) {
      g = groupSize.length;
      rootGroup.set(r, g);
      groupSize.push(0);
      groupLabel.push(cfg.stratify ? (labelOf(i) ?? '') : '');
    }
    groupOf[i] = g;
    groupSize[g]!++;
  }
  const strata = new Map<string, number[]>();
  for (let g = 0; g < groupSize.length; g++) {
    const l = groupLabel[g]!;
    let s = strata.get(l);
    if (!s) strata.set(l, (s = []));
    s.push(g);
  }
  const labels = [...strata.keys()].sort();
  const sizeOf = (l: string) => strata.get(l)!.reduce((a, g) => a + groupSize[g]!, 0);

  const targets = new Map<string, number[]>();
  if (cfg.by === 'ratio') {
    for (const l of labels) targets.set(l, apportion(sizeOf(l), [cfg.train, cfg.validation, cfg.test]));
  } else {
    const v = Math.round(cfg.validation);
    const t = Math.round(cfg.test);
    if (v + t > n) {
      throw new LoomError('CONFIG_INVALID', `split asks for ${v} validation + ${t} test rows but there are ${n}`, {
        field: 'split.validation',
        hint: 'lower the counts or use by: ratio',
      });
    }
    const shares = labels.map((l) => sizeOf(l) / Math.max(1, n));
    const vs = apportion(v, shares);
    const ts = apportion(t, shares);
    labels.forEach((l, k) => {
      const size = sizeOf(l);
      const vk = Math.min(vs[k]!, size);
      const tk = Math.min(ts[k]!, size - vk);
      targets.set(l, [size - vk - tk, vk, tk]);
    });
  }

  const groupSplit = new Int8Array(groupSize.length);
  for (const l of labels) {
    const gs = strata.get(l)!;
    shuffle(gs, mulberry32(cfg.seed ^ hashString32(l, 0x5eed)));
    const target = targets.get(l)!;
    const filled = [0, 0, 0];
    for (const g of gs) {
      let best = -1;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (let s = 0; s < 3; s++) {
        if (target[s]! <= 0) continue;
        const score = (target[s]! - filled[s]!) / target[s]!;
        if (score > bestScore) {
          bestScore = score;
          best = s;
        }
      }
      if (best < 0) best = 0;
      groupSplit[g] = best;
      filled[best]! += groupSize[g]!;
    }
  }
  const out: SplitName[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = SPLITS[groupSplit[groupOf[i]!]!]!;
  return out;
}

export function planSplits(items: readonly SplitItem[], input: SplitInput = {}): SplitName[] {
  const cfg = splitConfig.parse(input);
  const uf = new UnionFind(items.length);
  const firstWithKey = new Map<string | number, number>();
  items.forEach((it, i) => {
    uf.add();
    if (!cfg.leak_free) return;
    for (const k of it.keys ?? []) {
      const f = firstWithKey.get(k);
      if (f === undefined) firstWithKey.set(k, i);
      else uf.union(f, i);
    }
  });
  return plan(items.length, (i) => items[i]!.label, uf, cfg);
}

function summarizeSplits(splits: readonly SplitName[], labels?: readonly (string | undefined)[]): SplitSummary {
  const counts: Record<SplitName, number> = { train: 0, validation: 0, test: 0 };
  const byLabel: Record<string, Record<SplitName, number>> = {};
  splits.forEach((s, i) => {
    counts[s]++;
    if (labels) {
      const l = labels[i] ?? '';
      byLabel[l] ??= { train: 0, validation: 0, test: 0 };
      byLabel[l][s]++;
    }
  });
  return { counts, byLabel: labels ? byLabel : undefined, groups: 0 };
}

/** Group keys assignSplits uses for a row: its near-dup cluster and its normalised-text hash. */
function splitKeysOf(row: DataRow): (string | number)[] {
  const keys: (string | number)[] = [hash53(exactKey(rowText(row), { lowercase: true, ignore_punctuation: false }))];
  const c = row.meta?.dup_cluster;
  if (typeof c === 'string' || typeof c === 'number') keys.push(`cluster:${c}`);
  return keys;
}

export interface AssignSplitsOptions {
  tmpDir: string;
  /** Called once, after planning and before the first row is yielded. */
  onSummary?: (s: SplitSummary) => void;
}

export async function* assignSplits(
  rows: AsyncIterable<DataRow>,
  input: SplitInput,
  opts: AssignSplitsOptions,
): AsyncGenerator<{ split: SplitName; row: DataRow }> {
  const cfg = splitConfig.parse(input);
  const spill = new RowSpill(opts.tmpDir, 'split');
  const uf = new UnionFind();
  const firstWithKey = new Map<string | number, number>();
  const labelIds = new Map<string, number>();
  const labelNames: string[] = [];
  let labelOfRow = new Int32Array(1024);
  let ok = false;
  try {
    for await (const row of rows) {
      await spill.write(row);
      const i = uf.add();
      if (i === labelOfRow.length) {
        const g = new Int32Array(labelOfRow.length * 2);
        g.set(labelOfRow);
        labelOfRow = g;
      }
      let li = -1;
      if (typeof row.label === 'string') {
        li = labelIds.get(row.label) ?? -1;
        if (li < 0) {
          li = labelNames.length;
          labelIds.set(row.label, li);
          labelNames.push(row.label);
        }
      }
      labelOfRow[i] = li;
      if (!cfg.leak_free) continue;
      for (const k of splitKeysOf(row)) {
        const f = firstWithKey.get(k);
        if (f === undefined) firstWithKey.set(k, i);
        else uf.union(f, i);
      }
    }
    firstWithKey.clear();
    const n = uf.size;
    const labelAt = (i: number) => (labelOfRow[i]! < 0 ? undefined : labelNames[labelOfRow[i]!]);
    const splits = plan(n, labelAt, uf, cfg);
    if (opts.onSummary) {
      const s = summarizeSplits(splits, cfg.stratify ? Array.from({ length: n }, (_, i) => labelAt(i)) : undefined);
      const roots = new Set<number>();
      for (let i = 0; i < n; i++) roots.add(uf.find(i));
      s.groups = roots.size;
      opts.onSummary(s);
    }
    let i = 0;
    for await (const row of spill.read()) yield { split: splits[i++]!, row };
    ok = true;
  } finally {
    if (!ok) await spill.discard();
  }
}
