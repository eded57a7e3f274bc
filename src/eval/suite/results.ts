import type { ConversationResult } from '../simulate/conversation.ts';

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
}

/** Tokens one suite model spent in a run (keyed by the suite's model id); `modelId` is what prices are looked up by. */
export interface ModelUsage {
  modelId: string;
  promptTokens: number;
  completionTokens: number;
  costUsd?: number;
}

export interface RunResult {
  runId: string;
  suite: string;
  suitePath: string;
  configHash: string;
  started: string;
  finished?: string;
  models: { id: string; modelId: string; kind: string; path?: string; adapter?: string }[];
  tasks: TaskRunResult[];
  usage: Record<string, ModelUsage>;
  cache: { hits: number; misses: number };
  errors: string[];
  /** Dataset and scenario files the run read, with content hashes (lineage: which data a score came from). */
  datasets?: { task: string; path: string; sha256: string }[];
}
