/**
 * MinHash signature throughput (shingling + 112 permutations + 14 band keys) on real zh / en / mixed documents,
 * in MB/s of UTF-8 input per core; then the worker-pool throughput with one worker per core, and the whole
 * nearDedupStep end to end (signing, spill to disk, LSH, clustering, second pass).
 * Target (issue 2): >= 8 MB/s per core (30 GB per core-hour); datatrove ~3 GB per core-hour.
 *
 *   npx tsx bench/data/minhash.ts [--chars 2000] [--seconds 3]
 * Prints one JSON line per measurement.
 */
import { availableParallelism } from 'node:os';
import type { DataRow } from '../../src/core/types.ts';
import { nearDedupStep } from '../../src/data/dedup/near.ts';
import { makeBatchSigner, type SignParams } from '../../src/data/dedup/signature.ts';
import { SignerPool } from '../../src/data/dedup/signer-pool.ts';
import { runStep } from '../../src/data/step-harness.ts';
import { banking77En, clinc150En, crosswozZh, documents, poetryZh, shakespeareEn } from './neardup-corpus.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const chars = arg('chars', 2000);
const seconds = arg('seconds', 3);

const params: SignParams = { shingleWords: 5, shingleChars: 5, numPerm: 112, bands: 14, rowsPerBand: 8, seed: 42 };

const zh = documents([...crosswozZh(), ...poetryZh()], chars);
const en = documents([...banking77En(), ...clinc150En(), ...shakespeareEn()], chars);
const mixed: string[] = [];
for (let i = 0; i < Math.max(zh.length, en.length); i++) {
  if (i < zh.length) mixed.push(zh[i]!);
  if (i < en.length) mixed.push(en[i]!);
}
const bytesOf = (xs: readonly string[]) => xs.reduce((a, s) => a + Buffer.byteLength(s, 'utf8'), 0);

function single(name: string, docs: string[]): void {
  const sign = makeBatchSigner(params);
  const bytes = bytesOf(docs);
  sign(docs.slice(0, 200)); // warm-up: let the JIT optimise the loops
  let done = 0;
  let passes = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    for (let i = 0; i < docs.length; i += 256) sign(docs.slice(i, i + 256));
    done += bytes;
    passes++;
  }
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpuS = (c.user + c.system) / 1e6;
  const mbs = done / 1e6 / s;
  console.log(
    JSON.stringify({
      bench: 'minhash_signature',
      // Per CPU-second of this (single) thread: robust when other work shares the cores.
      mb_per_cpu_s: Number((done / 1e6 / cpuS).toFixed(2)),
      gb_per_cpu_hour: Number(((done / 1e6 / cpuS) * 3.6).toFixed(1)),
      corpus: name,
      threads: 1,
      docs: docs.length,
      avg_doc_bytes: Math.round(bytes / docs.length),
      passes,
      mb_per_s_per_core: Number(mbs.toFixed(2)),
      gb_per_core_hour: Number(((mbs * 3600) / 1000).toFixed(1)),
      docs_per_s: Math.round((docs.length * passes) / s),
    }),
  );
}

async function pooled(name: string, docs: string[]): Promise<void> {
  const workers = availableParallelism();
  const pool = new SignerPool(params, workers);
  pool.start();
  await pool.sign(docs.slice(0, 200));
  const bytes = bytesOf(docs);
  let done = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const inflight: Promise<unknown>[] = [];
    for (let i = 0; i < docs.length; i += 256) inflight.push(pool.sign(docs.slice(i, i + 256)));
    await Promise.all(inflight);
    done += bytes;
  }
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  await pool.close();
  const mbs = done / 1e6 / s;
  console.log(
    JSON.stringify({
      bench: 'minhash_signature_pool',
      corpus: name,
      threads: workers,
      mb_per_s: Number(mbs.toFixed(2)),
      mb_per_s_per_core: Number((mbs / workers).toFixed(2)),
      // All threads of the process (main thread batching + workers signing) per CPU-second.
      mb_per_cpu_s: Number((done / 1e6 / ((c.user + c.system) / 1e6)).toFixed(2)),
    }),
  );
}

/** The whole nearDedupStep (both passes: signing on workers, spill, LSH, clustering, read-back). */
async function step(name: string, docs: string[]): Promise<void> {
  const rows: DataRow[] = docs.map((text, i) => ({
    id: `d${i}`,
    text,
    meta: {},
    source: { file: 'bench', line: i + 1 },
  }));
  const bytes = bytesOf(docs);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runStep(nearDedupStep({ workers: 'auto' }), rows);
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  console.log(
    JSON.stringify({
      bench: 'near_dedup_step',
      mb_per_cpu_s: Number((bytes / 1e6 / ((c.user + c.system) / 1e6)).toFixed(2)),
      corpus: name,
      threads: availableParallelism(),
      docs: docs.length,
      mb: Number((bytes / 1e6).toFixed(1)),
      seconds: Number(s.toFixed(2)),
      mb_per_s: Number((bytes / 1e6 / s).toFixed(2)),
      dropped: r.rejects.length,
      index_bytes: r.counts['near_dedup.index_bytes'],
    }),
  );
}

single('zh', zh);
single('en', en);
single('mixed', mixed);
await pooled('mixed', mixed);
await step('mixed', mixed);
