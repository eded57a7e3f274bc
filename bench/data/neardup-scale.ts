/**
 * nearDedupStep at scale: N rows (default 100,000, text-dedup's CORE size) built from real zh/en utterances and
 * documents, a third of them edited copies; reports wall time, rows/s, the index's real size against
 * estimateLshMemory, and the process's peak RSS.
 *   npx tsx bench/data/neardup-scale.ts [--rows 100000] [--workers auto|0|2]
 */
import type { DataRow } from '../../src/core/types.ts';
import { mulberry32 } from '../../src/data/dedup/hash.ts';
import { estimateLshMemory } from '../../src/data/dedup/lsh.ts';
import { nearDedupStep } from '../../src/data/dedup/near.ts';
import { runStep } from '../../src/data/step-harness.ts';
import { banking77En, clinc150En, crosswozZh, documents, poetryZh, shakespeareEn } from './neardup-corpus.ts';

const argv = process.argv;
const at = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const n = Number(at('rows') ?? 100_000);
const workersArg = at('workers') ?? 'auto';
const workers = workersArg === 'auto' ? 'auto' : Number(workersArg);

const rnd = mulberry32(7);
const pool = [
  ...crosswozZh(),
  ...banking77En(),
  ...clinc150En(),
  ...documents(poetryZh(), 300),
  ...documents(shakespeareEn(), 600),
];
const rows: DataRow[] = [];
for (let i = 0; i < n; i++) {
  let text: string;
  if (i % 3 === 2 && rows.length > 0) {
    // An edited copy of an earlier row: one token-ish change in the middle.
    const src = rows[Math.floor(rnd() * rows.length)]!.text!;
    const p = Math.floor(src.length / 2);
    text = `${src.slice(0, p)}${rnd() < 0.5 ? ' 嗯' : ' well'}${src.slice(p)}`;
  } else {
    // Real text plus a unique tag so the originals are distinct rows.
    text = `${pool[Math.floor(rnd() * pool.length)]!} #${i.toString(36)}z`;
  }
  rows.push({ id: `r${i}`, text, meta: {}, source: { file: 'scale', line: i + 1 } });
}
const bytes = rows.reduce((a, r) => a + Buffer.byteLength(r.text!, 'utf8'), 0);

let peak = 0;
const timer = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 50);
const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
const r = await runStep(nearDedupStep({ workers }), rows);
const s = (performance.now() - t0) / 1000;
clearInterval(timer);
peak = Math.max(peak, process.memoryUsage().rss);
const est = estimateLshMemory(n);
console.log(
  JSON.stringify({
    bench: 'neardup_scale',
    rows: n,
    mb: Number((bytes / 1e6).toFixed(1)),
    workers,
    seconds: Number(s.toFixed(2)),
    rows_per_s: Math.round(n / s),
    dropped: r.rejects.length,
    clusters: r.counts['near_dedup.clusters'],
    index_bytes: r.counts['near_dedup.index_bytes'],
    estimate_bytes: est.bytes,
    estimate: est.text,
    rss_before_mb: Math.round(rss0 / 1e6),
    rss_peak_mb: Math.round(peak / 1e6),
  }),
);
