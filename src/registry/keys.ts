/**
 * API keys for `loom serve`, in the registry. Only a SHA-256 of each key is stored (keys are 192 random bits, so a
 * fast hash is enough; the plaintext is shown once at creation). Each key is scoped to model names (empty = all),
 * with an optional requests-per-minute limit and a lifetime token budget.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Registry } from './db.ts';

const KEY_MIGRATIONS = [
  (db: Registry['db']) => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        models TEXT NOT NULL,
        rpm INTEGER,
        token_budget INTEGER,
        tokens_used INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        revoked_at TEXT
      );
    `);
  },
];

export interface ApiKeyRecord {
  id: string;
  name: string;
  models: string[];
  rpm?: number;
  tokenBudget?: number;
  tokensUsed: number;
  createdAt: string;
  revokedAt?: string;
}

interface Row {
  id: string;
  name: string;
  hash: string;
  models: string;
  rpm: number | null;
  token_budget: number | null;
  tokens_used: number;
  created_at: string;
  revoked_at: string | null;
}

const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

const toRecord = (r: Row): ApiKeyRecord => ({
  id: r.id,
  name: r.name,
  models: JSON.parse(r.models) as string[],
  rpm: r.rpm ?? undefined,
  tokenBudget: r.token_budget ?? undefined,
  tokensUsed: r.tokens_used,
  createdAt: r.created_at,
  revokedAt: r.revoked_at ?? undefined,
});

export class ApiKeys {
  constructor(private readonly registry: Registry) {
    registry.migrate(KEY_MIGRATIONS, 'api_keys');
  }

  /** Returns the record and the plaintext key; the key is not recoverable afterwards. */
  create(o: { name: string; models?: string[]; rpm?: number; tokenBudget?: number }): {
    key: string;
    record: ApiKeyRecord;
  } {
    const id = `key_${randomBytes(6).toString('hex')}`;
    const key = `loom-sk-${randomBytes(24).toString('base64url')}`;
    this.registry.db
      .prepare(
        'INSERT INTO api_keys (id, name, hash, models, rpm, token_budget, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        id,
        o.name,
        hashKey(key),
        JSON.stringify(o.models ?? []),
        o.rpm ?? null,
        o.tokenBudget ?? null,
        new Date().toISOString(),
      );
    return { key, record: this.get(id)! };
  }

  get(id: string): ApiKeyRecord | undefined {
    const r = this.registry.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
    return r && toRecord(r);
  }

  list(): ApiKeyRecord[] {
    return (this.registry.db.prepare('SELECT * FROM api_keys ORDER BY created_at').all() as Row[]).map(toRecord);
  }

  activeCount(): number {
    return (
      this.registry.db.prepare('SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL').get() as { n: number }
    ).n;
  }

  /** True when the key existed and was active. */
  revoke(id: string): boolean {
    const r = this.registry.db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(new Date().toISOString(), id);
    return r.changes > 0;
  }

  /** The active key record for a presented plaintext key, else undefined. */
  verify(key: string): ApiKeyRecord | undefined {
    const h = hashKey(key);
    const r = this.registry.db.prepare('SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL').get(h) as
      | Row
      | undefined;
    // The lookup is by hash already; the constant-time compare keeps the final check free of early exits.
    if (!r || !timingSafeEqual(Buffer.from(r.hash), Buffer.from(h))) return undefined;
    return toRecord(r);
  }

  addTokens(id: string, n: number): void {
    this.registry.db.prepare('UPDATE api_keys SET tokens_used = tokens_used + ? WHERE id = ?').run(n, id);
  }
}
