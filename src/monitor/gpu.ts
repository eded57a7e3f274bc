/**
 * GPU gauges from `nvidia-smi` when the machine has one: utilisation and memory per GPU. Absent nvidia-smi (or one
 * that fails, e.g. no driver) means no loom_gpu_* series at all, rather than zeros that would read as an idle GPU.
 * Queried at scrape time, at most once per `minIntervalMs`, with a timeout, so a hung driver cannot stall /metrics.
 */
import { execFile, spawnSync } from 'node:child_process';
import { Gauge, type Registry } from 'prom-client';

export interface GpuSample {
  index: string;
  name: string;
  utilization: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
}

const QUERY = ['--query-gpu=index,name,utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits'];

/** One line per GPU: `0, NVIDIA H100 80GB HBM3, 37, 1024, 81559` (MiB). Malformed lines are skipped. */
export function parseNvidiaSmi(out: string): GpuSample[] {
  const rows: GpuSample[] = [];
  for (const line of out.split('\n')) {
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 5) continue;
    const [index, name, util, used, total] = f as [string, string, string, string, string];
    const n = [Number(util), Number(used), Number(total)];
    if (!/^\d+$/.test(index) || n.some((x) => !Number.isFinite(x))) continue;
    rows.push({
      index,
      name,
      utilization: n[0]! / 100,
      memoryUsedBytes: n[1]! * 1048576,
      memoryTotalBytes: n[2]! * 1048576,
    });
  }
  return rows;
}

/** Registers the GPU gauges when `command` (default nvidia-smi on PATH) answers; returns whether it did. */
export function registerGpuMetrics(
  registry: Registry,
  opts: { command?: string; minIntervalMs?: number; timeoutMs?: number } = {},
): boolean {
  const command = opts.command ?? 'nvidia-smi';
  const probe = spawnSync(command, QUERY, { encoding: 'utf8', timeout: opts.timeoutMs ?? 5000 });
  if (probe.status !== 0 || parseNvidiaSmi(probe.stdout ?? '').length === 0) return false;
  let last = 0;
  let cached: GpuSample[] = parseNvidiaSmi(probe.stdout);
  const sample = (): Promise<GpuSample[]> => {
    if (performance.now() - last < (opts.minIntervalMs ?? 2000)) return Promise.resolve(cached);
    return new Promise((resolve) => {
      execFile(command, QUERY, { encoding: 'utf8', timeout: opts.timeoutMs ?? 5000 }, (err, stdout) => {
        last = performance.now();
        // A failed query keeps the previous sample out: no series beats a stale one.
        cached = err ? [] : parseNvidiaSmi(stdout);
        resolve(cached);
      });
    });
  };
  const gauge = (name: string, help: string, value: (g: GpuSample) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['gpu', 'name'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const g of await sample()) this.set({ gpu: g.index, name: g.name }, value(g));
      },
    });
  gauge('loom_gpu_utilization_ratio', 'GPU utilisation (0-1) from nvidia-smi', (g) => g.utilization);
  gauge('loom_gpu_memory_used_bytes', 'GPU memory in use, from nvidia-smi', (g) => g.memoryUsedBytes);
  gauge('loom_gpu_memory_total_bytes', 'GPU memory size, from nvidia-smi', (g) => g.memoryTotalBytes);
  return true;
}
