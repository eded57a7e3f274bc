/**
 * Throughput of normalisation + quality filters (web preset) on a synthetic mixed zh/en corpus built in memory
 * from the shipped datasets (Chinese poetry and CrossWOZ dialogues; Shakespeare, banking77 and CLINC150).
 * Documents are 300–4,000 characters, about half Chinese, with injected noise (full-width letters, entities,
 * zero-width characters, repeated lines) so the normaliser and filters have work to do.
 *
 *   npx tsx bench/data/filters.ts [--mb 50] [--workers 2]
 *
 * Prints JSON lines: one per mode (1 thread inline; N worker threads each taking every N-th document; and the real
 * pipeline steps `normalizeStep` → `qualityFilterStep({ workers: N })`, whose pool ships batches of rows to
 * workers and back in order), with MB/s (UTF-8 bytes of input) and GB/hour. Generation time is not counted.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { DataRow } from '../../src/core/types.ts';
import { evaluateText, qualityFilterStep, resolveFiltersConfig } from '../../src/data/filters/index.ts';
import { createNormalizer, normalizeStep } from '../../src/data/normalize.ts';
import type { StepContext } from '../../src/data/step.ts';

const DATA =
  process.env.LOOM_DATASETS ?? join(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/datasets');

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sources(): { zh: string[]; en: string[] } {
  const zh: string[] = [];
  const en: string[] = [];
  for (const f of ['songci.txt', 'yuanqu.txt']) {
    for (const l of readFileSync(join(DATA, 'chinese_poetry_zh', f), 'utf8').split('\n'))
      if (l.trim().length > 4) zh.push(l.trim());
  }
  for (const l of readFileSync(join(DATA, 'crosswoz_zh', 'dialogues_val.jsonl'), 'utf8').split('\n')) {
    for (const m of l.matchAll(/"content": "([^"]{6,})"/g)) zh.push(m[1]!);
  }
  for (const l of readFileSync(join(DATA, 'tinyshakespeare_en', 'input.txt'), 'utf8').split('\n'))
    if (l.length > 20) en.push(l);
  for (const l of readFileSync(join(DATA, 'banking77_en', 'train.csv'), 'utf8')
    .split('\n')
    .slice(1)) {
    const t = l.replace(/,[a-z_]+$/, '').replace(/^"|"$/g, '');
    if (t.length > 10) en.push(t);
  }
  return { zh, en };
}

export function buildCorpus(targetBytes: number, seed = 7): string[] {
  const { zh, en } = sources();
  const r = rng(seed);
  const docs: string[] = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    const isZh = r() < 0.5;
    const pool = isZh ? zh : en;
    const want = 300 + Math.floor(r() * 3700);
    const lines: string[] = [];
    let len = 0;
    while (len < want) {
      const para: string[] = [];
      const n = 1 + Math.floor(r() * 4);
      for (let i = 0; i < n; i++) para.push(pool[Math.floor(r() * pool.length)]!);
      let line = para.join(isZh ? '' : ' ');
      const noise = r();
      if (noise < 0.05) line = line.replace(/[a-z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
      else if (noise < 0.08) line = `${line} &amp; more&nbsp;info`;
      else if (noise < 0.1) line = `\u200b${line}\u200d`;
      else if (noise < 0.12 && lines.length) line = lines[lines.length - 1]!;
      lines.push(line);
      len += line.length;
      if (r() < 0.3) lines.push('');
    }
    const doc = lines.join('\n');
    docs.push(doc);
    bytes += Buffer.byteLength(doc);
  }
  return docs;
}

async function processDocs(docs: string[], stride: number, offset: number): Promise<{ bytes: number; kept: number }> {
  const norm = await createNormalizer();
  const cfg = resolveFiltersConfig({ preset: 'web' });
  let bytes = 0;
  let kept = 0;
  for (let i = offset; i < docs.length; i += stride) {
    const d = docs[i]!;
    bytes += Buffer.byteLength(d);
    const ev = evaluateText(norm(d).text, cfg);
    if (!ev.drop) kept++;
  }
  return { bytes, kept };
}

interface WorkerIn {
  mb: number;
  stride: number;
  offset: number;
}

if (!isMainThread) {
  const w = workerData as WorkerIn;
  const docs = buildCorpus(w.mb * 1e6);
  parentPort!.postMessage({ ready: true });
  parentPort!.once('message', async () => {
    parentPort!.postMessage(await processDocs(docs, w.stride, w.offset));
  });
} else if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const mb = arg('mb', 50);
  const workers = arg('workers', Math.min(2, cpus().length));
  const docs = buildCorpus(mb * 1e6);
  // CPU seconds of the whole process (all threads): on a shared machine wall time measures the contention,
  // MB per CPU-second measures the code.
  const cpuNow = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  let cpu0 = cpuNow();
  const t0 = performance.now();
  const one = await processDocs(docs, 1, 0);
  const s1 = (performance.now() - t0) / 1000;
  const report = (mode: string, threads: number, bytes: number, secs: number, kept: number): void => {
    const cpu = cpuNow() - cpu0;
    const mbps = bytes / 1e6 / secs;
    console.log(
      JSON.stringify({
        bench: 'data.filters',
        mode,
        threads,
        docs: docs.length,
        mb: Number((bytes / 1e6).toFixed(1)),
        seconds: Number(secs.toFixed(2)),
        mb_per_s: Number(mbps.toFixed(2)),
        mb_per_s_per_thread: Number((mbps / threads).toFixed(2)),
        gb_per_hour: Number(((mbps * 3600) / 1000).toFixed(1)),
        cpu_seconds: Number(cpu.toFixed(2)),
        mb_per_cpu_s: Number((bytes / 1e6 / cpu).toFixed(2)),
        kept_frac: Number((kept / docs.length).toFixed(3)),
      }),
    );
  };
  report('normalize+filters(web)', 1, one.bytes, s1, one.kept);
  if (workers > 1) {
    const pool = Array.from(
      { length: workers },
      (_, k) =>
        // Node 20 workers do not inherit tsx's loader: register it, then import this file.
        new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((api) => { api.register(); return import(${JSON.stringify(import.meta.url)}); });`,
          { eval: true, workerData: { mb, stride: workers, offset: k } satisfies WorkerIn },
        ),
    );
    await Promise.all(pool.map((w) => new Promise((res) => w.once('message', res))));
    cpu0 = cpuNow();
    const t1 = performance.now();
    const results = await Promise.all(
      pool.map(
        (w) =>
          new Promise<{ bytes: number; kept: number }>((res) => {
            w.once('message', res);
            w.postMessage('go');
          }),
      ),
    );
    const s2 = (performance.now() - t1) / 1000;
    for (const w of pool) await w.terminate();
    const bytes = results.reduce((a, b) => a + b.bytes, 0);
    const kept = results.reduce((a, b) => a + b.kept, 0);
    report('normalize+filters(web)', workers, bytes, s2, kept);

    const ctx: StepContext = { reject: () => {}, count: () => {}, tmpDir: '/tmp', strict: false };
    async function* src(): AsyncGenerator<DataRow> {
      for (let i = 0; i < docs.length; i++)
        yield { id: String(i), text: docs[i]!, meta: {}, source: { file: 'b', line: i + 1 } };
    }
    cpu0 = cpuNow();
    const t2 = performance.now();
    let keptSteps = 0;
    const norm = normalizeStep({ log_changes: 'none' });
    const filt = qualityFilterStep({ preset: 'web', workers, parallel_min_chars: 0 });
    for await (const _ of filt.run(norm.run(src(), ctx), ctx)) keptSteps++;
    const s3 = (performance.now() - t2) / 1000;
    const bytes3 = docs.reduce((a, d) => a + Buffer.byteLength(d), 0);
    report('steps: normalizeStep→qualityFilterStep(workers)', workers, bytes3, s3, keptSteps);
  }
}
