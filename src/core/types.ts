/** Shared vocabulary of the stages: messages, data rows, models that chat. Stages import these, never each other. */

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface Message {
  role: Role;
  content: string;
  /** Per-message weight of this turn in the SFT loss (0 = not trained). Assistant turns default to 1. */
  loss_weight?: number;
}

/** Where a row came from, so every reject and lint finding can point at file and line. */
export interface SourceRef {
  file: string;
  /** 1-based line (text formats) or record index (Parquet, JSON arrays). */
  line: number;
}

/**
 * One record flowing through the data pipeline. Exactly one of the payload shapes is usually set:
 * `text` (pretraining or classification with `label`), `messages` (SFT), or `chosen`/`rejected` (preference).
 */
export interface DataRow {
  id: string;
  text?: string;
  label?: string;
  messages?: Message[];
  prompt?: Message[];
  chosen?: Message[] | string;
  rejected?: Message[] | string;
  meta: Record<string, unknown>;
  source: SourceRef;
}

/** A row that a step dropped or changed, with the reason; written to rejects.jsonl, never lost. */
export interface RejectRecord {
  step: string;
  reason: string;
  /** `dropped` removes the row; `changed` keeps a modified row (e.g. PII masked) and logs the original. */
  action: 'dropped' | 'changed';
  source: SourceRef;
  row: unknown;
  detail?: Record<string, unknown>;
  /** For duplicates: the id of the kept row this one duplicates. */
  duplicate_of?: string;
}

export interface GenerationSettings {
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
  stop?: string[];
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface ChatResult {
  text: string;
  usage: Usage;
  finishReason: 'stop' | 'length' | 'error';
}

/**
 * Anything that can answer a conversation: a local engine model, or an OpenAI-compatible endpoint.
 * Evaluation and serving talk to models only through this.
 */
export interface ChatModel {
  /** Stable id used in caches, reports and lineage (e.g. `local:runs/sft-1` or `openai:gpt-4o-mini`). */
  readonly id: string;
  chat(messages: Message[], settings?: GenerationSettings, signal?: AbortSignal): Promise<ChatResult>;
  /** Sum of log-probabilities of each continuation given the prompt (for multiple choice); optional. */
  logLikelihood?(prompt: Message[] | string, continuations: string[]): Promise<number[]>;
  close?(): Promise<void>;
}
