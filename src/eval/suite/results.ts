import type { PriceProvenance } from '../../providers/presets.ts';
import type { ConversationResult } from '../simulate/conversation.ts';

/** How reports and the CLI show a task whose model could not be reached. */
export const UNREACHABLE = 'n/a (unreachable)';

/** A run in which some model could not be reached is a failed run (registry status), whatever else finished. */
export function runFailed(run: RunResult): boolean {
  return run.models.some((m) => m.unreachable) || run.tasks.some((t) => t.unreachable);
}

/** A corpus-level score with its bootstrap confidence interval (95 % unless stated). */
export interface MetricSummary {
  score: number;
  ci?: [number, number];
  /** sacrebleu-style formatted score or signature, where the metric has one. */
  text?: string;
}

export interface ExampleResult {
  id: string;
  input: string;
  hypothesis: string;
  references: string[];
  scores: Record<string, number>;
  error?: string;
}

export interface TaskRunResult {
  task: string;
  kind: 'generation' | 'classification' | 'multiple_choice' | 'conversation';
  model: string;
  prompt: string;
  /** Tokenisation or mode used for scoring (e.g. `zh`, `13a`, `loglik`). */
  scoring?: string;
  summary: Record<string, MetricSummary>;
  examples: ExampleResult[];
  confusion?: { labels: string[]; matrix: number[][] };
  conversations?: ConversationResult[];
  errors: string[];
  /**
   * Set when the model (or the judge / simulated user it needs) could not be reached: the health probe before the
   * suite failed, or the endpoint went away during the task. The summary is then empty and reports show
   * "n/a (unreachable)", never a score of 0.
   */
  unreachable?: string;
}

/** Tokens one suite model spent in a run (keyed by the suite's model id); `modelId` is what prices are looked up by. */
export interface ModelUsage {
  modelId: string;
  promptTokens: number;
  completionTokens: number;
  costUsd?: number;
  /** Calls that reached the model (cache hits excluded) and their summed wall time, for latency and cost/request. */
  requests?: number;
  seconds?: number;
  /** costUsd spread over 1,000 such requests (hosted models with a price). */
  costPer1kRequestsUsd?: number;
  /** Mean seconds per request, in milliseconds. */
  meanLatencyMs?: number;
  /** Where costUsd's price came from: the price table (verified or not, as of when) or the suite's own prices. */
  price?: PriceProvenance;
}

/** Cost per 1,000 requests and mean latency from a usage record's totals (undefined when there is nothing to divide). */
export function perRequest(u: ModelUsage): { costPer1kRequestsUsd?: number; meanLatencyMs?: number } {
  const n = u.requests ?? 0;
  if (n === 0) return {};
  return {
    ...(u.costUsd !== undefined ? { costPer1kRequestsUsd: (u.costUsd / n) * 1000 } : {}),
    ...(u.seconds !== undefined ? { meanLatencyMs: (u.seconds / n) * 1000 } : {}),
  };
}

export interface RunResult {
  runId: string;
  suite: string;
  suitePath: string;
  configHash: string;
  started: string;
  finished?: string;
  models: { id: string; modelId: string; kind: string; path?: string; adapter?: string; unreachable?: string }[];
  tasks: TaskRunResult[];
  usage: Record<string, ModelUsage>;
  cache: { hits: number; misses: number };
  errors: string[];
  /** Dataset and scenario files the run read, with content hashes (lineage: which data a score came from). */
  datasets?: { task: string; path: string; sha256: string }[];
}
