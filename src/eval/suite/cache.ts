import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ChatModel, ChatResult, GenerationSettings, Message } from '../../core/types.ts';

/**
 * Generations cached by (model id, conversation, settings): re-scoring a run, adding a metric, or resuming a
 * killed run never regenerates what is already there. SQLite (WAL) so concurrent writers in one process are safe.
 */
export class GenerationCache {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement<[string], { result: string }>;
  private readonly putStmt: Database.Statement<[string, string, string, number]>;
  hits = 0;
  misses = 0;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, model TEXT NOT NULL, result TEXT NOT NULL, created INTEGER NOT NULL)',
    );
    this.getStmt = this.db.prepare('SELECT result FROM generations WHERE key = ?');
    this.putStmt = this.db.prepare(
      'INSERT OR REPLACE INTO generations (key, model, result, created) VALUES (?, ?, ?, ?)',
    );
  }

  static key(model: string, messages: Message[], settings: GenerationSettings): string {
    return createHash('sha256')
      .update(JSON.stringify([model, messages, settings]))
      .digest('hex');
  }

  get(key: string): ChatResult | undefined {
    const row = this.getStmt.get(key);
    return row ? (JSON.parse(row.result) as ChatResult) : undefined;
  }

  put(key: string, model: string, r: ChatResult): void {
    this.putStmt.run(key, model, JSON.stringify(r), Date.now());
  }

  /**
   * Wraps a model so every successful reply is cached; failed calls are not, so a rerun retries them. `identity`
   * (default: the model id) is what the key names the model by; pass a fingerprint of the weights or endpoint.
   */
  wrap(model: ChatModel, identity: string = model.id): ChatModel & { cached: boolean } {
    const cache = this;
    return {
      id: model.id,
      cached: true,
      async chat(messages, settings = {}, signal) {
        const key = GenerationCache.key(identity, messages, settings);
        const hit = cache.get(key);
        if (hit) {
          cache.hits++;
          return hit;
        }
        cache.misses++;
        const r = await model.chat(messages, settings, signal);
        if (r.finishReason !== 'error') cache.put(key, model.id, r);
        return r;
      },
      logLikelihood: model.logLikelihood?.bind(model),
      close: model.close?.bind(model),
    };
  }

  close(): void {
    this.db.close();
  }
}
