/**
 * The Monitor page's live series: two scrapes of a server's /metrics, taken `dt` apart, become one chart point
 * (request and token rates, queue and running requests, mean request latency over the interval). Pure, so the
 * browser bundle and the tests share it.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  /** Milliseconds (Date.now() when the scrape answered). */
  at: number;
  samples: Sample[];
}

export interface MonitorPoint {
  /** Seconds since the epoch (uPlot's x unit). */
  t: number;
  requestsPerSecond: number;
  tokensPerSecond: number;
  queue: number;
  running: number;
  /** Mean seconds per request finished in the interval; undefined when none finished. */
  meanLatency?: number;
}

/** Sum over every label set of one metric (all models, all statuses). */
function total(samples: readonly Sample[], name: string): number {
  let s = 0;
  for (const x of samples) if (x.name === name) s += x.value;
  return s;
}

/** A counter that went down was reset (the server restarted): its rise since the reset is its current value. */
const rise = (prev: number, cur: number): number => (cur >= prev ? cur - prev : cur);

export function monitorPoint(prev: Scrape, cur: Scrape): MonitorPoint | undefined {
  const dt = (cur.at - prev.at) / 1000;
  if (!(dt > 0)) return undefined;
  const d = (name: string) => rise(total(prev.samples, name), total(cur.samples, name));
  const finished = d('loom_request_duration_seconds_count');
  return {
    t: cur.at / 1000,
    requestsPerSecond: d('loom_requests_total') / dt,
    tokensPerSecond: d('loom_tokens_total') / dt,
    queue: total(cur.samples, 'loom_queue_depth'),
    running: total(cur.samples, 'loom_running_requests'),
    ...(finished > 0 ? { meanLatency: d('loom_request_duration_seconds_sum') / finished } : {}),
  };
}
