import assert from 'node:assert/strict';
import { test } from 'node:test';
import { monitorPoint, type Sample } from '../../src/studio/series.ts';

const s = (name: string, value: number, model = 'a'): Sample => ({ name, labels: { model }, value });

test('two scrapes 2 s apart: rates, gauges and the mean latency of the requests finished between them', () => {
  const prev = {
    at: 10_000,
    samples: [
      s('loom_requests_total', 4),
      s('loom_requests_total', 6, 'b'),
      s('loom_tokens_total', 100),
      s('loom_request_duration_seconds_sum', 3),
      s('loom_request_duration_seconds_count', 10),
      s('loom_queue_depth', 5),
    ],
  };
  const cur = {
    at: 12_000,
    samples: [
      s('loom_requests_total', 7),
      s('loom_requests_total', 9, 'b'),
      s('loom_tokens_total', 160),
      s('loom_request_duration_seconds_sum', 4.5),
      s('loom_request_duration_seconds_count', 13),
      s('loom_queue_depth', 1),
      s('loom_queue_depth', 2, 'b'),
      s('loom_running_requests', 1),
    ],
  };
  // (7+9 − (4+6)) / 2 s = 3 req/s; (160−100)/2 = 30 tok/s; (4.5−3)/(13−10) = 0.5 s per request
  assert.deepEqual(monitorPoint(prev, cur), {
    t: 12,
    requestsPerSecond: 3,
    tokensPerSecond: 30,
    queue: 3,
    running: 1,
    meanLatency: 0.5,
  });
});

test('a counter reset counts from zero; no finished request means no latency; no time passed means no point', () => {
  const prev = { at: 0, samples: [s('loom_requests_total', 50)] };
  const cur = { at: 1000, samples: [s('loom_requests_total', 2)] };
  const p = monitorPoint(prev, cur)!;
  assert.equal(p.requestsPerSecond, 2);
  assert.equal(p.meanLatency, undefined);
  assert.equal(monitorPoint(cur, cur), undefined);
});
