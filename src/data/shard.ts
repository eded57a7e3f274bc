/**
 * Scale-out without a cluster manager: N identical jobs each take a deterministic share of the input files,
 * write their rows and LSH band files into one shared folder, and a merge step joins the band files to remove
 * near-duplicates that straddle shards (datatrove's contract: rank i of N, files i, i+N, …).
 *
 *   parseShardSpec('3/8')                → { index: 3, count: 8 }   (0-based index)
 *   shardFromEnv()                        → spec from SLURM_ARRAY_TASK_ID/_COUNT, JOB_COMPLETION_INDEX + LOOM_SHARD_COUNT
 *   selectShardFiles(files, spec, mode)   → this shard's files ('sorted': round-robin over sorted paths; 'hash':
 *                                           hash(path) mod N, stable when files are added)
 *   shardPaths(dir, spec)                 → { dir, rows, bands, done } of one shard under the shared folder
 *   markShardDone(dir, spec, info)        → writes the DONE marker (last, atomically)
 *   listShardOutputs(dir)                 → the finished shards; throws naming the missing ones
 *   mergeShards(inputs, cfg, reject, summary?, fileOrder?) → AsyncIterable<DataRow>: cross-shard near-dedup
 *   runShardMerge({ dir, out, rejects, nearDedup, fileOrder }) → merged rows + rejects (atomic); returns a summary
 *
 * A shard's rows file holds DataRow JSON lines (what the pipeline produced after its dedup steps); its band file
 * is what nearDedupStep({ bands_out }) wrote: one line per row that reached near-dedup, kept or not. The merge
 * rebuilds the LSH index over all band records ordered by (source file, line) — file order from `fileOrder` or
 * sorted paths — so with the same config it finds the same clusters and keepers as one run over the files in that
 * order, provided each shard read its files in that order too (with `verify`, band records also carry signatures
 * and the merge verifies candidates the same way). Keepers are picked among the rows still present in the rows
 * files, so a cluster never vanishes; the others are dropped with `duplicate_of` = keeper id.
 */
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type NearDedupConfig, nearDedupConfig } from '../config/data-dedup.ts';
import { AtomicWriter, writeFileAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import type { DataRow, RejectRecord } from '../core/types.ts';
import { decideClusters } from './dedup/clusters.ts';
import { factsDiffer, keptByGuard } from './dedup/facts.ts';
import { hashString32 } from './dedup/hash.ts';
import { nearDedupIndex } from './dedup/lsh.ts';
import { type BandRecord, decodeSignature } from './dedup/near.ts';

export interface ShardSpec {
  index: number;
  count: number;
}

export function parseShardSpec(s: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index >= count) {
    throw new LoomError('CONFIG_INVALID', `shard "${s}" is not i/N with 0 <= i < N`, {
      field: 'shard',
      hint: 'e.g. --shard 0/4 … --shard 3/4 (or --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)',
    });
  }
  return { index, count };
}

/** Spec from a Slurm array task or a Kubernetes indexed Job; undefined when neither is present. */
export function shardFromEnv(env: NodeJS.ProcessEnv = process.env): ShardSpec | undefined {
  const slurmId = env.SLURM_ARRAY_TASK_ID;
  const slurmCount = env.SLURM_ARRAY_TASK_COUNT;
  if (slurmId !== undefined && slurmCount !== undefined) {
    const min = Number(env.SLURM_ARRAY_TASK_MIN ?? 0);
    return parseShardSpec(`${Number(slurmId) - min}/${slurmCount}`);
  }
  const k8s = env.JOB_COMPLETION_INDEX;
  if (k8s !== undefined && env.LOOM_SHARD_COUNT !== undefined) return parseShardSpec(`${k8s}/${env.LOOM_SHARD_COUNT}`);
  return undefined;
}

export function selectShardFiles(
  files: readonly string[],
  spec: ShardSpec,
  mode: 'sorted' | 'hash' = 'sorted',
): string[] {
  const sorted = [...new Set(files)].sort();
  if (mode === 'hash') return sorted.filter((f) => (hashString32(f, 0x51a4d) >>> 0) % spec.count === spec.index);
  return sorted.filter((_, i) => i % spec.count === spec.index);
}

function pad(n: number): string {
  return String(n).padStart(5, '0');
}

export interface ShardPaths {
  dir: string;
  rows: string;
  bands: string;
  /** Exact-dedup keys of the rows the shard's exact dedup kept (`{"id","key"}` lines), when exact dedup ran. */
  exact: string;
  done: string;
}

export function shardPaths(dir: string, spec: ShardSpec): ShardPaths {
  const d = join(dir, `shard-${pad(spec.index)}-of-${pad(spec.count)}`);
  return {
    dir: d,
    rows: join(d, 'rows.jsonl'),
    bands: join(d, 'bands.jsonl'),
    exact: join(d, 'exact.jsonl'),
    done: join(d, 'DONE'),
  };
}

/** Written last by a shard job; a shard without it is treated as not finished (re-run it). */
export function markShardDone(dir: string, spec: ShardSpec, info: Record<string, unknown> = {}): void {
  writeFileAtomic(
    shardPaths(dir, spec).done,
    `${JSON.stringify({ ...spec, ...info, finished: new Date().toISOString() })}\n`,
  );
}

export interface ShardInput {
  rows: string;
  bands: string;
  /**
   * `{"id","key"}` lines: the exact-dedup key of every row the shard's exact dedup kept. With these the merge
   * drops cross-shard exact duplicates *before* building the LSH index, as a single run does (exact dedup runs
   * before near dedup), so clusters, keepers and cluster sizes match a single run.
   */
  exact?: string;
}

/** All shard outputs under `dir`, in shard order. Throws naming the shards that are missing or unfinished. */
export function listShardOutputs(dir: string): ShardInput[] {
  if (!existsSync(dir)) throw new LoomError('INPUT_NOT_FOUND', `no shard folder ${dir}`, { file: dir });
  const re = /^shard-(\d+)-of-(\d+)$/;
  const found = readdirSync(dir)
    .map((n) => re.exec(n))
    .filter((m): m is RegExpExecArray => m !== null);
  if (found.length === 0) {
    throw new LoomError('INPUT_NOT_FOUND', `no shard-*-of-* folders in ${dir}`, {
      file: dir,
      hint: 'run the shard jobs first',
    });
  }
  const count = Number(found[0]![2]);
  const out: ShardInput[] = [];
  const missing: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = shardPaths(dir, { index: i, count });
    if (!existsSync(p.done) || !existsSync(p.rows) || !existsSync(p.bands)) missing.push(i);
    else out.push({ rows: p.rows, bands: p.bands, exact: existsSync(p.exact) ? p.exact : undefined });
  }
  if (missing.length > 0) {
    throw new LoomError('INPUT_NOT_FOUND', `shards not finished: ${missing.map((i) => `${i}/${count}`).join(', ')}`, {
      file: dir,
      hint: 're-run those shard jobs (each writes DONE last), then merge again',
    });
  }
  return out;
}

async function* jsonLines<T>(path: string): AsyncGenerator<{ value: T; line: number }> {
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of rl) {
      n++;
      if (!text.trim()) continue;
      try {
        yield { value: JSON.parse(text) as T, line: n };
      } catch (e) {
        throw new LoomError('INPUT_MALFORMED', `bad JSON line: ${(e as Error).message}`, { file: path, line: n });
      }
    }
  } finally {
    rl.close();
  }
}

export interface MergeSummary {
  shards: number;
  rows_in: number;
  rows_out: number;
  dropped: number;
  dropped_cross_shard: number;
  clusters: number;
  band_records: number;
  rows_without_bands: number;
  /** Rows dropped as exact duplicates of a row in another shard (needs the shards' `exact` files). */
  dropped_exact: number;
  /** Rows LSH put in a cluster but kept because their numbers or entities differ from the keeper's. */
  kept_facts_differ: number;
}

function emptyMergeSummary(): MergeSummary {
  return {
    shards: 0,
    rows_in: 0,
    rows_out: 0,
    dropped: 0,
    dropped_cross_shard: 0,
    clusters: 0,
    band_records: 0,
    rows_without_bands: 0,
    dropped_exact: 0,
    kept_facts_differ: 0,
  };
}

/**
 * Cross-shard near-dedup: builds one LSH index over every shard's band records, then streams the shards' rows
 * interleaved back into single-run order (`rowsInFileOrder`), yielding kept rows (cluster tags updated to the
 * global cluster) and passing dropped ones to `reject`.
 */
async function* mergeShards(
  inputs: readonly ShardInput[],
  input: Partial<NearDedupConfig>,
  reject: (r: RejectRecord) => void,
  summary?: MergeSummary,
  fileOrder?: readonly string[],
): AsyncGenerator<DataRow> {
  const cfg = nearDedupConfig.parse({ ...input, bands_out: undefined });
  const ids: string[] = [];
  const shardOf: number[] = [];
  const fileIdx: number[] = [];
  const lines: number[] = [];
  const scores: number[] = [];
  // The facts guard of a single run (src/data/dedup/facts.ts), from the band records: '' when a row has none.
  const facts: string[] = [];
  const guarded = cfg.numbers_must_match || cfg.entities_must_match;
  const files = new Map<string, number>();
  let keys = new Float64Array(1024 * cfg.bands);
  const hasKeys: boolean[] = [];
  // With verify, signatures travel in the band files so cross-shard candidates are checked like local ones.
  let sigs = cfg.verify ? new Int32Array(1024 * cfg.num_perm) : undefined;
  const useExact = inputs.length > 0 && inputs.every((x) => x.exact !== undefined);
  const exactKeys: number[] = [];
  for (let s = 0; s < inputs.length; s++) {
    // One shard's id → exact key map at a time; the keys then sit in a flat array beside the band records.
    const exactOfId = new Map<string, number>();
    if (useExact) {
      for await (const { value } of jsonLines<{ id: string; key: number }>(inputs[s]!.exact!)) {
        exactOfId.set(value.id, value.key);
      }
    }
    for await (const { value: r, line } of jsonLines<BandRecord>(inputs[s]!.bands)) {
      if (r.keys && r.keys.length !== cfg.bands) {
        throw new LoomError(
          'INPUT_MALFORMED',
          `band record has ${r.keys.length} keys, config says ${cfg.bands} bands`,
          {
            file: inputs[s]!.bands,
            line,
            hint: 'merge with the same near-dedup config (bands, rows_per_band, num_perm, seed) the shards used',
          },
        );
      }
      const i = ids.length;
      ids.push(r.id);
      shardOf.push(s);
      exactKeys.push(exactOfId.get(r.id) ?? Number.NaN);
      let f = files.get(r.file);
      if (f === undefined) files.set(r.file, (f = files.size));
      fileIdx.push(f);
      lines.push(r.line);
      scores.push(r.score ?? Number.NEGATIVE_INFINITY);
      facts.push(guarded ? (r.facts ?? '') : '');
      if ((i + 1) * cfg.bands > keys.length) {
        const g = new Float64Array(keys.length * 2);
        g.set(keys);
        keys = g;
      }
      hasKeys.push(r.keys !== null);
      if (r.keys) keys.set(r.keys, i * cfg.bands);
      if (sigs && r.keys) {
        if (r.sig === undefined) {
          throw new LoomError('INPUT_MALFORMED', 'band record has no signature but the config verifies candidates', {
            file: inputs[s]!.bands,
            line,
            hint: 'run the shards with the same near-dedup config (verify: true) as the merge',
          });
        }
        const sig = decodeSignature(r.sig);
        if (sig.length !== cfg.num_perm) {
          throw new LoomError('INPUT_MALFORMED', `signature has ${sig.length} values, config says ${cfg.num_perm}`, {
            file: inputs[s]!.bands,
            line,
          });
        }
        if ((i + 1) * cfg.num_perm > sigs.length) {
          const g = new Int32Array(sigs.length * 2);
          g.set(sigs);
          sigs = g;
        }
        sigs.set(sig, i * cfg.num_perm);
      }
    }
  }
  const n = ids.length;
  // File order of "first": the order a single run would read the files in (`fileOrder`, as given by the runner),
  // else sorted paths; files missing from `fileOrder` come after it, sorted.
  const given = new Map((fileOrder ?? []).map((f, k) => [f, k] as const));
  const fileNames = [...files.keys()];
  const fileRank = new Int32Array(fileNames.length);
  fileNames
    .map((name, i) => ({ name, i, g: given.get(name) ?? Number.POSITIVE_INFINITY }))
    .sort((a, b) => (a.g === b.g ? 0 : a.g - b.g) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .forEach((x, rank) => {
      fileRank[x.i] = rank;
    });
  // Global order: (file rank, line, shard, record) — the order of one run over all files.
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) =>
      fileRank[fileIdx[a]!]! - fileRank[fileIdx[b]!]! || lines[a]! - lines[b]! || shardOf[a]! - shardOf[b]! || a - b,
  );
  const posOf = new Int32Array(n);
  const index = nearDedupIndex(cfg);
  // Cross-shard exact duplicates (first copy in single-run order wins) stay out of the index, as in a single run.
  const exactFirst = new Map<number, number>();
  const exactDupOf = new Int32Array(n).fill(-1);
  for (let p = 0; p < n; p++) {
    const i = order[p]!;
    posOf[i] = p;
    const ek = exactKeys[i]!;
    if (!Number.isNaN(ek)) {
      const first = exactFirst.get(ek);
      if (first !== undefined) exactDupOf[i] = first;
      else exactFirst.set(ek, i);
    }
    index.add(
      hasKeys[i] && exactDupOf[i] === -1 ? keys.subarray(i * cfg.bands, (i + 1) * cfg.bands) : null,
      sigs?.subarray(i * cfg.num_perm, (i + 1) * cfg.num_perm),
    );
  }
  exactFirst.clear();
  keys = new Float64Array(0);
  sigs = undefined;
  const byKey = new Map<string, number>();
  for (let i = 0; i < n; i++) byKey.set(`${shardOf[i]}\u0000${ids[i]}`, i);
  // Keepers are chosen among rows still present in the shards' rows files: if a shard read its files in another
  // order than (file, line), its local keeper may differ, and the merge must not drop a whole cluster.
  const present = new Uint8Array(n);
  for (let s = 0; s < inputs.length; s++) {
    for await (const { value: row } of jsonLines<DataRow>(inputs[s]!.rows)) {
      const i = byKey.get(`${s}\u0000${row.id}`);
      if (i !== undefined) present[posOf[i]!] = 1;
    }
  }
  const d = decideClusters(
    index.uf,
    n,
    cfg.keep,
    (p) => scores[order[p]!]!,
    (p) => present[p] === 1,
  );

  const sum: MergeSummary = summary ?? emptyMergeSummary();
  sum.shards = inputs.length;
  sum.clusters = d.clusters;
  sum.band_records = n;
  const rankOf = fileRanks([...fileNames, ...(fileOrder ?? [])], fileOrder);
  for await (const { shard: s, row } of rowsInFileOrder(
    inputs.map((x) => x.rows),
    rankOf,
  )) {
    sum.rows_in++;
    const i = byKey.get(`${s}\u0000${row.id}`);
    if (i === undefined) {
      sum.rows_without_bands++;
      sum.rows_out++;
      yield row;
      continue;
    }
    if (exactDupOf[i]! >= 0) {
      const first = exactDupOf[i]!;
      sum.dropped++;
      sum.dropped_exact++;
      if (shardOf[first] !== s) sum.dropped_cross_shard++;
      reject({
        step: 'near_dedup_merge',
        reason: 'exact_duplicate',
        action: 'dropped',
        source: row.source,
        row,
        duplicate_of: ids[first],
        detail: { keeper_shard: shardOf[first], cross_shard: shardOf[first] !== s },
      });
      continue;
    }
    const p = posOf[i]!;
    const size = d.size[p]!;
    const keeper = order[d.keeper[p]!]!;
    const why = size >= 2 && keeper !== i ? factsDiffer(facts[i]!, facts[keeper]!) : undefined;
    if (why) {
      sum.kept_facts_differ++;
      sum.rows_out++;
      const { dup_cluster: _c, dup_cluster_size: _s, ...rest } = row.meta ?? {};
      row.meta = rest;
      yield keptByGuard(row, ids[keeper]!, why);
      continue;
    }
    if (size < 2 || keeper === i || cfg.action === 'mark') {
      if (size >= 2) row.meta = { ...(row.meta ?? {}), dup_cluster: ids[keeper], dup_cluster_size: size };
      else if (row.meta && 'dup_cluster' in row.meta) {
        const { dup_cluster: _c, dup_cluster_size: _s, ...rest } = row.meta;
        row.meta = rest;
      }
      sum.rows_out++;
      yield row;
      continue;
    }
    sum.dropped++;
    const cross = shardOf[keeper] !== s;
    if (cross) sum.dropped_cross_shard++;
    reject({
      step: 'near_dedup_merge',
      reason: 'near_duplicate',
      action: 'dropped',
      source: row.source,
      row,
      duplicate_of: ids[keeper],
      detail: { cluster: ids[keeper], cluster_size: size, keeper_shard: shardOf[keeper], cross_shard: cross },
    });
  }
}

/** Rank of each input file in a single run's reading order (`fileOrder` first, then the others sorted). */
export function fileRanks(files: Iterable<string>, fileOrder?: readonly string[]): Map<string, number> {
  const given = new Map((fileOrder ?? []).map((f, k) => [f, k] as const));
  const names = [...new Set(files)].sort((a, b) => {
    const ga = given.get(a) ?? Number.POSITIVE_INFINITY;
    const gb = given.get(b) ?? Number.POSITIVE_INFINITY;
    return (ga === gb ? 0 : ga - gb) || (a < b ? -1 : a > b ? 1 : 0);
  });
  return new Map(names.map((n, i) => [n, i] as const));
}

/**
 * The rows of several shards' rows files interleaved back into the order of one run over all files: each shard
 * holds its files' rows in (file, line) order, so a k-way merge on (file rank, line, shard) restores the global
 * order. Files missing from `rank` sort after the ranked ones, by name. The split assigns rows in stream order,
 * so this is what makes a sharded job's train/validation/test identical to a single run's.
 */
export async function* rowsInFileOrder(
  paths: readonly string[],
  rank: ReadonlyMap<string, number>,
): AsyncGenerator<{ shard: number; row: DataRow }> {
  const its = paths.map((p) => jsonLines<DataRow>(p)[Symbol.asyncIterator]());
  const heads = await Promise.all(its.map((it) => it.next()));
  const before = (a: DataRow, b: DataRow): boolean => {
    const fa = a.source?.file ?? '';
    const fb = b.source?.file ?? '';
    if (fa !== fb) {
      const ra = rank.get(fa) ?? Number.POSITIVE_INFINITY;
      const rb = rank.get(fb) ?? Number.POSITIVE_INFINITY;
      if (ra !== rb) return ra < rb;
      return fa < fb;
    }
    return (a.source?.line ?? 0) < (b.source?.line ?? 0);
  };
  for (;;) {
    let best = -1;
    for (let s = 0; s < heads.length; s++) {
      const h = heads[s]!;
      if (h.done) continue;
      if (best < 0 || before(h.value.value, (heads[best] as IteratorYieldResult<{ value: DataRow }>).value.value)) {
        best = s;
      }
    }
    if (best < 0) return;
    yield { shard: best, row: (heads[best] as IteratorYieldResult<{ value: DataRow }>).value.value };
    heads[best] = await its[best]!.next();
  }
}

export interface ShardMergeOptions {
  /** Shared folder holding the shard-NNNNN-of-NNNNN folders (or give `inputs` explicitly). */
  dir?: string;
  inputs?: ShardInput[];
  /** Merged rows (DataRow JSON lines), written atomically. */
  out: string;
  /** Rejects of the merge (JSON lines), written atomically. Default: `<out>.rejects.jsonl`. */
  rejects?: string;
  /** The near-dedup config the shards used. */
  nearDedup?: Partial<NearDedupConfig>;
  /**
   * The order a single run would read the input files in (as they appear in rows' `source.file`), so that
   * `keep: first` picks the same row as a single run; default: sorted paths.
   */
  fileOrder?: readonly string[];
}

export async function runShardMerge(opts: ShardMergeOptions): Promise<MergeSummary> {
  const inputs = opts.inputs ?? (opts.dir ? listShardOutputs(opts.dir) : []);
  if (inputs.length === 0) throw new LoomError('INPUT_NOT_FOUND', 'nothing to merge: give dir or inputs');
  const out = new AtomicWriter(opts.out);
  const rej = new AtomicWriter(opts.rejects ?? `${opts.out.replace(/\.jsonl$/, '')}.rejects.jsonl`);
  const pendingRejects: string[] = [];
  const summary = emptyMergeSummary();
  try {
    for await (const row of mergeShards(
      inputs,
      opts.nearDedup ?? {},
      (r) => pendingRejects.push(JSON.stringify(r)),
      summary,
      opts.fileOrder,
    )) {
      await out.write(`${JSON.stringify(row)}\n`);
      while (pendingRejects.length > 0) await rej.write(`${pendingRejects.shift()}\n`);
    }
    while (pendingRejects.length > 0) await rej.write(`${pendingRejects.shift()}\n`);
    await out.commit();
    await rej.commit();
  } catch (e) {
    await out.abort();
    await rej.abort();
    throw e;
  }
  return summary;
}
