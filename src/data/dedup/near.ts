/**
 * Near-duplicate removal with MinHash-LSH: `nearDedupStep(cfg)` (config: nearDedupConfig).
 *
 * Pass 1 streams the rows once: texts are signed in batches on worker threads (SignerPool; started when the
 * input passes ~2 MB so small runs do not pay the start-up), each row is spilled to a JSONL file in ctx.tmpDir and
 * its band keys go into the LshIndex (union-find over shared buckets). Then each cluster picks its keeper by the
 * keep policy (first / longest / quality). Pass 2 streams the spill back in input order: kept rows get
 * `meta.dup_cluster` (the keeper's id) and `meta.dup_cluster_size` when their cluster has more than one member;
 * the others go to ctx.reject with `duplicate_of` = keeper id (or, with action 'mark', are kept and tagged too,
 * so a later split can keep clusters together). The facts guard (src/data/dedup/facts.ts) keeps a row whose numbers
 * or named entities differ from its keeper's, tagged `near_dup_of`.
 *
 * With `bands_out`, every row's band keys, source and keep score are also written (JSONL, atomically) for the
 * cross-shard merge in src/data/shard.ts. Memory of the index: estimateLshMemory (src/data/dedup/lsh.ts).
 */
import { type NearDedupConfig, nearDedupConfig } from '../../config/data-dedup.ts';
import { AtomicWriter } from '../../core/atomic.ts';
import type { DataRow } from '../../core/types.ts';
import { rowText, type Step, type StepContext } from '../step.ts';
import { decideClusters, policyScore } from './clusters.ts';
import { factsDiffer, factsOf, keptByGuard } from './facts.ts';
import { nearDedupIndex } from './lsh.ts';
import { estimateJaccard } from './minhash.ts';
import { type SignedBatch, signParamsOf } from './signature.ts';
import { SignerPool } from './signer-pool.ts';
import { F64Column, RowSpill } from './spill.ts';

export type NearDedupInput = Partial<Omit<NearDedupConfig, 'workers'>> & { workers?: 'auto' | number };

/**
 * One line of a band file (see src/data/shard.ts). `keys` is null for a row without tokens. With `verify` on, `sig`
 * holds the MinHash signature (little-endian int32, base64) so the merge can verify cross-shard candidates too.
 */
export interface BandRecord {
  id: string;
  file: string;
  line: number;
  score: number | null;
  keys: number[] | null;
  sig?: string;
  /** The row's numbers and entities for the facts guard (factsOf), when it has any. */
  facts?: string;
}

function encodeSignature(sig: Int32Array): string {
  return Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('base64');
}

export function decodeSignature(s: string): Int32Array {
  const b = Buffer.from(s, 'base64');
  const out = new Int32Array(b.byteLength >> 2);
  for (let i = 0; i < out.length; i++) out[i] = b.readInt32LE(i * 4);
  return out;
}

const BATCH_CHARS = 256 * 1024;
const BATCH_ROWS = 1024;
const AUTO_WORKER_CHARS = 2 * 1024 * 1024;

export function nearDedupStep(input: NearDedupInput = {}): Step {
  const cfg = nearDedupConfig.parse(input);
  return { name: 'near_dedup', run: (rows, ctx) => runNearDedup(rows, ctx, cfg) };
}

async function* runNearDedup(
  rows: AsyncIterable<DataRow>,
  ctx: StepContext,
  cfg: NearDedupConfig,
): AsyncGenerator<DataRow> {
  const workers = cfg.workers === 'auto' ? SignerPool.defaultWorkers() : cfg.workers;
  const pool = new SignerPool(signParamsOf(cfg), workers);
  const index = nearDedupIndex(cfg);
  const spill = new RowSpill(ctx.tmpDir, 'near-dedup');
  const ids: string[] = [];
  // Per row, its numbers and entities for the facts guard; '' for the many rows without any.
  const facts: string[] = [];
  const guarded = cfg.numbers_must_match || cfg.entities_must_match;
  const scores = new F64Column();
  const bandsOut = cfg.bands_out ? new AtomicWriter(cfg.bands_out) : undefined;
  let ok = false;
  try {
    const queue: { rows: DataRow[]; lengths: number[]; signed: Promise<SignedBatch> }[] = [];
    let batch: DataRow[] = [];
    let texts: string[] = [];
    let lengths: number[] = [];
    let batchChars = 0;
    let seenChars = 0;

    const absorb = async (b: { rows: DataRow[]; lengths: number[]; signed: Promise<SignedBatch> }) => {
      const s = await b.signed;
      for (let i = 0; i < b.rows.length; i++) {
        const row = b.rows[i]!;
        await spill.write(row);
        ids.push(row.id);
        if (cfg.keep !== 'first') scores.push(policyScore(cfg.keep, b.lengths[i]!, row.meta ?? {}, cfg.quality_field));
        const has = s.shingles[i]! > 0;
        const keys = has ? s.keys.subarray(i * cfg.bands, (i + 1) * cfg.bands) : null;
        const sig = has ? s.sigs.subarray(i * cfg.num_perm, (i + 1) * cfg.num_perm) : undefined;
        index.add(keys, sig);
        if (bandsOut) {
          const rec: BandRecord = {
            id: row.id,
            file: row.source?.file ?? '',
            line: row.source?.line ?? 0,
            score: cfg.keep === 'first' ? null : scores.get(scores.length - 1),
            keys: keys ? Array.from(keys) : null,
          };
          const f = guarded ? facts[ids.length - 1]! : '';
          if (f !== '') rec.facts = f;
          if (rec.score === Number.NEGATIVE_INFINITY) rec.score = null;
          if (cfg.verify && sig) rec.sig = encodeSignature(sig);
          await bandsOut.write(`${JSON.stringify(rec)}\n`);
        }
      }
    };
    const submit = async () => {
      if (batch.length === 0) return;
      if (!pool.started && workers > 0 && (cfg.workers !== 'auto' || seenChars > AUTO_WORKER_CHARS)) pool.start();
      const signed = pool.sign(texts);
      // Marks the promise handled: a worker failure surfaces when this batch is awaited, not as an unhandled rejection.
      signed.catch(() => undefined);
      queue.push({ rows: batch, lengths, signed });
      batch = [];
      texts = [];
      lengths = [];
      batchChars = 0;
      while (queue.length > pool.parallelism * 2) await absorb(queue.shift()!);
    };

    for await (const row of rows) {
      const text = rowText(row);
      if (guarded) facts.push(factsOf(text, cfg));
      batch.push(row);
      texts.push(text);
      lengths.push(text.length);
      batchChars += text.length;
      seenChars += text.length;
      if (batchChars >= BATCH_CHARS || batch.length >= BATCH_ROWS) await submit();
    }
    await submit();
    while (queue.length > 0) await absorb(queue.shift()!);
    await pool.close();
    await bandsOut?.commit();

    const n = index.size;
    const d = decideClusters(index.uf, n, cfg.keep, (i) => scores.get(i));
    ctx.count('near_dedup.rows', n);
    ctx.count('near_dedup.clusters', d.clusters);
    ctx.count('near_dedup.candidate_pairs', index.candidates);
    if (cfg.verify) ctx.count('near_dedup.rejected_by_verify', index.rejected);
    ctx.count('near_dedup.index_bytes', index.bytes());

    let i = 0;
    for await (const row of spill.read()) {
      const k = d.keeper[i]!;
      const size = d.size[i]!;
      const self = i;
      i++;
      if (size < 2) {
        yield row;
        continue;
      }
      const cluster = ids[k]!;
      const why = self !== k && guarded ? factsDiffer(facts[self]!, facts[k]!) : undefined;
      if (why) {
        ctx.count(`near_dedup.kept_${why}_differ`);
        yield keptByGuard(row, cluster, why);
        continue;
      }
      if (self === k || cfg.action === 'mark') {
        row.meta = { ...(row.meta ?? {}), dup_cluster: cluster, dup_cluster_size: size };
        yield row;
        continue;
      }
      ctx.count('near_dedup.dropped');
      const detail: Record<string, unknown> = { cluster, cluster_size: size };
      const a = index.signature(self);
      const b = index.signature(k);
      if (a && b) detail.jaccard_estimate = Math.round(estimateJaccard(a, b) * 1000) / 1000;
      ctx.reject({
        step: 'near_dedup',
        reason: 'near_duplicate',
        action: 'dropped',
        source: row.source,
        row,
        duplicate_of: cluster,
        detail,
      });
    }
    ok = true;
  } finally {
    await pool.close();
    if (!ok) {
      await bandsOut?.abort();
      await spill.discard();
    }
  }
}
