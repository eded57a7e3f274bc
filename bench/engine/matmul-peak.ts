/**
 * ORT MatMul peak on this machine: GFLOP/s of fp32 MatMul through our engine (worker-hosted session), 2 threads.
 * Each graph chains 8 MatMuls against constant weights so per-run overhead (feed/output copies) is amortised.
 * Usage: npx tsx bench/engine/matmul-peak.ts [threads]
 */
import { Engine, Graph, hostTensor, matmul, type Tensor, toOnnx } from '../../src/engine/index.ts';

const threads = Number(process.argv[2] ?? 2);
const CHAIN = 8;

function randomTensor(dims: number[]) {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (Math.random() - 0.5) * 0.05;
  return hostTensor('float32', dims, data);
}

async function measure(engine: Engine, m: number, k: number, n: number) {
  const g = new Graph('matmul_peak');
  const x = g.input('x', 'float32', [m, k]);
  const w1 = g.weight('w1', randomTensor([k, n]));
  const w2 = g.weight('w2', randomTensor([n, k]));
  let y: Tensor = x;
  for (let i = 0; i < CHAIN; i++) y = matmul(y, i % 2 === 0 ? w1 : w2);
  g.output('y', y);
  const s = await engine.load(toOnnx(g));
  const feeds = { x: randomTensor([m, k]) };
  for (let i = 0; i < 2; i++) await s.run(feeds);
  const times: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < 3000 || times.length < 3) {
    const t = performance.now();
    await s.run(feeds);
    times.push(performance.now() - t);
  }
  await s.release();
  times.sort((a, b) => a - b);
  const best = times[0]! / 1000;
  const median = times[Math.floor(times.length / 2)]! / 1000;
  const flops = 2 * m * k * n * CHAIN;
  return {
    bench: 'engine.matmul_peak',
    shape: `${m}x${k}x${n}`,
    threads,
    runs: times.length,
    gflops_best: +(flops / best / 1e9).toFixed(1),
    gflops_median: +(flops / median / 1e9).toFixed(1),
  };
}

const engine = await Engine.create({ threads });
try {
  for (const [m, k, n] of [
    [1024, 1024, 1024],
    [2048, 576, 1536],
    [512, 576, 576],
  ] as const) {
    console.log(JSON.stringify(await measure(engine, m, k, n)));
  }
} finally {
  await engine.close();
}
