/**
 * Prometheus metrics for `loom serve`, named after vLLM's so existing dashboards translate
 * (loom_time_to_first_token_seconds ~ vllm:time_to_first_token_seconds). One Registry per server so several
 * servers in one process (tests, the quickstart) never clash on the global default registry.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { registerGpuMetrics } from './gpu.ts';

const LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'loom_requests_total',
    help: 'HTTP requests answered, by route, model and status code',
    labelNames: ['route', 'model', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'loom_request_duration_seconds',
    help: 'Wall time from request received to last byte, by route',
    labelNames: ['route'] as const,
    buckets: LATENCY,
    registers: [this.registry],
  });
  readonly ttft = new Histogram({
    name: 'loom_time_to_first_token_seconds',
    help: 'Time from request received to the first generated text',
    labelNames: ['model'] as const,
    buckets: LATENCY,
    registers: [this.registry],
  });
  readonly itl = new Histogram({
    name: 'loom_inter_token_latency_seconds',
    help: 'Time between successive streamed text pieces',
    labelNames: ['model'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly tokens = new Counter({
    name: 'loom_tokens_total',
    help: 'Tokens processed, direction=in (prompt) or out (completion)',
    labelNames: ['direction', 'model'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'loom_queue_depth',
    help: 'Requests waiting for a free generation slot',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly running = new Gauge({
    name: 'loom_running_requests',
    help: 'Requests generating right now (the running batch size when served one sequence per slot)',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: 'loom_load_shed_total',
    help: 'Requests refused to protect the server, by reason (queue_full, memory)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly guardVerdicts = new Counter({
    name: 'loom_guard_verdicts_total',
    help: 'Guard verdicts, by direction (input, output), verdict (allow, flag, mask, block) and deciding rule',
    labelNames: ['direction', 'verdict', 'rule'] as const,
    registers: [this.registry],
  });

  /** serve.yaml's models as `loom serve --dry-run` estimates them (set once at start). */
  readonly modelMemory = new Gauge({
    name: 'loom_model_memory_estimate_bytes',
    help: 'Estimated resident memory per model: part=weights (on disk) or kv_cache (concurrency x context, fp32)',
    labelNames: ['model', 'part'] as const,
    registers: [this.registry],
  });

  /** Whether loom_gpu_* gauges exist (nvidia-smi answered at start). */
  readonly gpu: boolean;

  constructor(opts: { nvidiaSmi?: string | false } = {}) {
    // process RSS/heap, event-loop lag, GC: prom-client's defaults, under the loom_ prefix.
    collectDefaultMetrics({ register: this.registry, prefix: 'loom_' });
    // ONNX Runtime sessions and arenas, KV caches and the engine workers' own heaps live outside the main V8 heap;
    // onnxruntime-node reports no allocator statistics, so this is their measured share of RSS.
    new Gauge({
      name: 'loom_native_memory_bytes',
      help: 'Resident memory outside the main thread V8 heap (RSS - heapTotal): ONNX Runtime, engine workers, KV caches',
      registers: [this.registry],
      collect() {
        const m = process.memoryUsage();
        this.set(Math.max(0, m.rss - m.heapTotal));
      },
    });
    this.gpu = opts.nvidiaSmi === false ? false : registerGpuMetrics(this.registry, { command: opts.nvidiaSmi });
    // These three are gauges named *_total, which `promtool check metrics` rejects; the handle counts they
    // carry are not worth a lint failure in every scrape pipeline.
    for (const n of ['active_handles_total', 'active_requests_total', 'active_resources_total']) {
      this.registry.removeSingleMetric(`loom_nodejs_${n}`);
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
