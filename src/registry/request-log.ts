/**
 * The `loom serve` request log in the registry: one row per generation with the prompt and reply **PII-redacted
 * before they are written** (the data stage's detectors: phones, e-mails, ID numbers, cards, …), so the raw values
 * never reach the disk. Rows older than `retention_days` are deleted at open and then hourly. Its tables have their
 * own migration list (version key `request_log`), apart from the registry's core list other stages extend.
 */
import { createPiiDetector, type PiiDetector } from '../data/pii.ts';
import type { Registry } from './db.ts';

const LOG_MIGRATIONS = [
  (db: Registry['db']) => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS request_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        request_id TEXT NOT NULL,
        model TEXT NOT NULL,
        route TEXT NOT NULL,
        status INTEGER NOT NULL,
        prompt TEXT NOT NULL,
        reply TEXT NOT NULL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        latency_ms REAL NOT NULL,
        guard_input TEXT,
        guard_output TEXT
      );
      CREATE INDEX IF NOT EXISTS request_log_ts ON request_log(ts);
    `);
  },
];

export interface RequestLogEntry {
  requestId: string;
  model: string;
  route: 'chat' | 'text';
  status: number;
  /** Chat turns, or the raw prompt of /v1/completions. */
  messages?: readonly { role: string; content: string }[];
  prompt?: string;
  reply: string;
  promptTokens?: number;
  completionTokens?: number;
  latencyMs: number;
  guardInput?: string;
  guardOutput?: string;
}

export interface StoredRequest {
  ts: string;
  request_id: string;
  model: string;
  route: string;
  status: number;
  prompt: string;
  reply: string;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  latency_ms: number;
  guard_input: string | null;
  guard_output: string | null;
}

export interface RequestLogOptions {
  retentionDays: number;
  /** Longer prompts/replies are cut (after redaction) so one huge request cannot bloat the registry. */
  maxChars: number;
  now?: () => Date;
}

export class RequestLog {
  private readonly pii: PiiDetector = createPiiDetector();
  private readonly now: () => Date;
  private lastPrune = 0;
  constructor(
    private readonly registry: Registry,
    private readonly opts: RequestLogOptions,
  ) {
    registry.migrate(LOG_MIGRATIONS, 'request_log');
    this.now = opts.now ?? (() => new Date());
    this.prune();
  }

  private redact(text: string): string {
    const t = this.pii.mask(text).text;
    return t.length > this.opts.maxChars ? `${t.slice(0, this.opts.maxChars)}…` : t;
  }

  append(e: RequestLogEntry): void {
    const prompt = e.messages
      ? JSON.stringify(e.messages.map((m) => ({ role: m.role, content: this.redact(m.content) })))
      : this.redact(e.prompt ?? '');
    this.registry.db
      .prepare(
        `INSERT INTO request_log (ts, request_id, model, route, status, prompt, reply, prompt_tokens,
           completion_tokens, latency_ms, guard_input, guard_output) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        this.now().toISOString(),
        e.requestId,
        e.model,
        e.route,
        e.status,
        prompt,
        this.redact(e.reply),
        e.promptTokens ?? null,
        e.completionTokens ?? null,
        e.latencyMs,
        e.guardInput ?? null,
        e.guardOutput ?? null,
      );
    if (this.now().getTime() - this.lastPrune > 3_600_000) this.prune();
  }

  /** Deletes rows past the retention window; returns how many went. */
  prune(): number {
    const now = this.now();
    this.lastPrune = now.getTime();
    const cutoff = new Date(now.getTime() - this.opts.retentionDays * 86_400_000).toISOString();
    return this.registry.db.prepare('DELETE FROM request_log WHERE ts < ?').run(cutoff).changes;
  }

  recent(limit = 100): StoredRequest[] {
    return this.registry.db
      .prepare(
        'SELECT ts, request_id, model, route, status, prompt, reply, prompt_tokens, completion_tokens, latency_ms, guard_input, guard_output FROM request_log ORDER BY id DESC LIMIT ?',
      )
      .all(limit) as StoredRequest[];
  }
}
