/**
 * End-to-end `loom data run` throughput: the whole pipeline (ingest → import → normalize → filters (chat) → PII →
 * format → exact dedup → near dedup → split → writes + report) on a synthetic customer-service corpus of chat rows
 * built from the example's FAQ (examples/customer-service/tools/faq.ts): random zh/en questions with order numbers,
 * greetings, fake phone numbers and e-mails, one or two turns, 5 % exact copies. Generation time is not counted.
 *
 *   npx tsx bench/data/pipeline.ts [--rows 50000]
 *
 * Prints one JSON line per run (the customer-service example as shipped, then the synthetic corpus): rows in/out,
 * seconds, rows/s, MB/s of input, and peak RSS.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FAQ } from '../../examples/customer-service/tools/faq.ts';
import { runDataPipeline } from '../../src/data/pipeline.ts';

const args = process.argv.slice(2);
const rowsWanted = Number(args[args.indexOf('--rows') + 1] || 50_000) || 50_000;

let seed = 7;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 10)).join('');

function turn(zh: boolean): [string, string] {
  const e = pick(FAQ);
  let q = pick(zh ? e.zh : e.en);
  const r = rand();
  if (r < 0.3) q = zh ? `你好，订单号${digits(12)}，${q}` : `Hi, order #${digits(10)}: ${q}`;
  else if (r < 0.4)
    q += zh ? `我的手机号是1${pick(['38', '59', '86'])}${digits(8)}。` : ` Email me at user${digits(4)}@example.com.`;
  return [q, zh ? e.zhA : e.enA];
}

function corpus(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i > 10 && rand() < 0.05) {
      lines.push(lines[Math.floor(rand() * lines.length)]!);
      continue;
    }
    const zh = rand() < 0.5;
    const messages: { role: string; content: string }[] = [];
    for (let t = rand() < 0.6 ? 1 : 2; t > 0; t--) {
      const [q, a] = turn(zh);
      messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
    }
    lines.push(JSON.stringify({ messages }));
  }
  return `${lines.join('\n')}\n`;
}

async function measure(name: string, run: () => Promise<{ counts: { input: number; output: number } }>, bytes: number) {
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const t0 = performance.now();
  const r = await run();
  const s = (performance.now() - t0) / 1000;
  clearInterval(timer);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'data.pipeline',
      corpus: name,
      rows_in: r.counts.input,
      rows_out: r.counts.output,
      mb_in: Number((bytes / 1e6).toFixed(2)),
      seconds: Number(s.toFixed(2)),
      rows_per_s: Math.round(r.counts.input / s),
      mb_per_s: Number((bytes / 1e6 / s).toFixed(2)),
      peak_rss_mb: Math.round(peak / 1e6),
    })}\n`,
  );
}

const example = resolve('examples/customer-service/data.yaml');
const exDir = mkdtempSync(join(tmpdir(), 'loom-bench-ex-'));
const exBytes = ['faq/faq_zh_export.csv', 'faq/faq_en.jsonl', 'faq/helpcenter_export.json', 'chats/chat_logs.jsonl']
  .map((f) => statSync(resolve('examples/customer-service/raw', f)).size)
  .reduce((a, b) => a + b, 0);
await measure(
  'customer-service example',
  () => runDataPipeline(example, { outDir: exDir, quiet: true, force: true }),
  exBytes,
);

const dir = mkdtempSync(join(tmpdir(), 'loom-bench-pipe-'));
const text = corpus(rowsWanted);
writeFileSync(join(dir, 'chats.jsonl'), text);
const config = {
  name: 'bench',
  out_dir: 'out',
  inputs: [{ path: 'chats.jsonl', formatting: 'messages' as const }],
  filters: { preset: 'chat' as const },
  pii: {},
  dedup: { exact: {}, near: { verify: true, threshold: 0.8 } },
  output: { format: 'messages' as const, system_prompt: 'You are the Lumi Store assistant.' },
};
await measure(
  `synthetic chats (${rowsWanted} rows)`,
  () => runDataPipeline(config, { baseDir: dir, quiet: true }),
  Buffer.byteLength(text),
);
rmSync(dir, { recursive: true, force: true });
rmSync(exDir, { recursive: true, force: true });
