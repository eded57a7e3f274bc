/**
 * `loom serve` figures: gateway overhead (p50/p99 of the same chat request sent straight to a local fake upstream
 * vs through the gateway's upstream backend), and local aggregate tokens/s with 1/4/8 concurrent streams vs the
 * same requests one after another (tiny model, through HTTP; continuous batching, default concurrency 8 — the
 * smol135-shaped engine figures are bench/serve/batching.ts).
 * Usage: npx tsx bench/serve/gateway.ts [requests=300]   JSON lines out.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startServe } from '../../src/cli/serve.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { startOpenAIMock } from '../../tools/mocks/openai-mock.ts';

const N = Number(process.argv[2] ?? 300);
const work = mkdtempSync(join(tmpdir(), 'loom-bench-serve-'));
process.env.LOOM_REGISTRY = join(work, 'registry.db');
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const body = { model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 };

async function timeAll(url: string, model: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < N + 20; i++) {
    const t0 = performance.now();
    const r = await fetch(`${url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, model }),
    });
    await r.arrayBuffer();
    if (i >= 20) out.push(performance.now() - t0); // first 20 warm up sockets and JIT
  }
  return out;
}

try {
  const mock = await startOpenAIMock(() => ({ reply: 'ok' }));
  const cfg = join(work, 'serve.yaml');
  writeFileSync(
    cfg,
    `models:\n  - { name: up, backend: upstream, base_url: "${mock.url}", model: m, retries: 0, concurrency: 4 }\n`,
  );
  const gw = await startServe(cfg, { port: 0, logLevel: 'silent' });
  const direct = await timeAll(mock.url, 'm');
  const via = await timeAll(`${gw.url}/v1`, 'up');
  const ms = (x: number) => +x.toFixed(3);
  console.log(
    JSON.stringify({
      bench: 'serve.gateway_overhead',
      requests: N,
      direct_p50_ms: ms(pct(direct, 0.5)),
      direct_p99_ms: ms(pct(direct, 0.99)),
      gateway_p50_ms: ms(pct(via, 0.5)),
      gateway_p99_ms: ms(pct(via, 0.99)),
      overhead_p50_ms: ms(pct(via, 0.5) - pct(direct, 0.5)),
      overhead_p99_ms: ms(pct(via, 0.99) - pct(direct, 0.99)),
    }),
  );
  await gw.close();
  await mock.close();

  const dir = join(work, 'tiny');
  createModelFolder(dir, { preset: 'tiny', seed: 1 });
  const s = await startServe(dir, {
    port: 0,
    logLevel: 'silent',
    overrides: ['models.0.threads=2', 'limits.queue=16'],
  });
  const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const one = async () => {
    const t0 = performance.now();
    let ttft = 0;
    let tokens = 0;
    const st = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'tell me a story' }],
      max_tokens: 64,
      temperature: 0,
      seed: 1,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const c of st) {
      if (!ttft && c.choices[0]?.delta.content) ttft = performance.now() - t0;
      if (c.usage) tokens = c.usage.completion_tokens;
    }
    return { ttft, tokens };
  };
  await one(); // warm up
  for (const streams of [1, 4, 8]) {
    let t0 = performance.now();
    const seq: { ttft: number; tokens: number }[] = [];
    for (let i = 0; i < streams; i++) seq.push(await one());
    const seqS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const par = await Promise.all(Array.from({ length: streams }, one));
    const parS = (performance.now() - t0) / 1000;
    const sum = (xs: { tokens: number }[]) => xs.reduce((a, b) => a + b.tokens, 0);
    const ttfts = par.map((p) => p.ttft);
    console.log(
      JSON.stringify({
        bench: 'serve.local_streams',
        model: 'tiny',
        streams,
        sequential_tokens_per_s: +(sum(seq) / seqS).toFixed(1),
        concurrent_tokens_per_s: +(sum(par) / parS).toFixed(1),
        ttft_p50_ms: +pct(ttfts, 0.5).toFixed(1),
        ttft_p99_ms: +pct(ttfts, 0.99).toFixed(1),
      }),
    );
  }
  await s.close();
} finally {
  rmSync(work, { recursive: true, force: true });
}
