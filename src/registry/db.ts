import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';

/**
 * The SQLite run registry: one file (default `.loom/registry.db` under the working folder) that records every run
 * with its lineage (dataset hash, base model hash, config, parent run) and its metrics. Later stages (eval, export,
 * serve) add their own tables through `migrate`; the schema version lives in `PRAGMA user_version`.
 */
export interface RunRecord {
  id: string;
  kind: string;
  status: 'running' | 'finished' | 'failed' | 'interrupted' | 'imported';
  outputDir: string;
  datasetHash?: string;
  baseModelHash?: string;
  baseModel?: string;
  parentId?: string;
  config: unknown;
  createdAt: string;
  finishedAt?: string;
}

export interface MetricRow {
  runId: string;
  step: number;
  name: string;
  value: number;
  split?: string;
}

type Migration = (db: Database.Database) => void;

const MIGRATIONS: Migration[] = [
  (db) => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        output_dir TEXT NOT NULL,
        dataset_hash TEXT,
        base_model_hash TEXT,
        base_model TEXT,
        parent_id TEXT, -- lineage may name a run recorded in another registry: no foreign key
        config TEXT NOT NULL,
        created_at TEXT NOT NULL,
        finished_at TEXT
      );
      CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step INTEGER NOT NULL,
        split TEXT NOT NULL DEFAULT 'train',
        name TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (run_id, split, name, step)
      );
      CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, name);
    `);
  },
];

/**
 * $LOOM_REGISTRY when it names a file. An empty value (`LOOM_REGISTRY=` in a shell or a CI matrix that blanks it)
 * counts as unset, so it falls back to the default instead of opening a database at the current folder's path;
 * turning the registry off is a flag (`--no-registry`), never an empty variable.
 */
export function registryFromEnv(): string | undefined {
  const v = process.env.LOOM_REGISTRY?.trim();
  return v ? v : undefined;
}

export function defaultRegistryPath(fallback = '.loom/registry.db'): string {
  return resolve(registryFromEnv() ?? fallback);
}

export class Registry {
  readonly db: Database.Database;

  constructor(path = defaultRegistryPath()) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate(MIGRATIONS);
  }

  /** Runs the migrations past the stored user_version; other stages pass their own list under a distinct table set. */
  migrate(migrations: readonly Migration[], versionKey = 'user_version'): void {
    if (versionKey !== 'user_version') {
      this.db.exec('CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL)');
      const row = this.db.prepare('SELECT version FROM schema_versions WHERE name = ?').get(versionKey) as
        | { version: number }
        | undefined;
      const from = row?.version ?? 0;
      this.db.transaction(() => {
        for (let i = from; i < migrations.length; i++) migrations[i]!(this.db);
        this.db
          .prepare(
            'INSERT INTO schema_versions(name, version) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET version = ?',
          )
          .run(versionKey, migrations.length, migrations.length);
      })();
      return;
    }
    const from = this.db.pragma('user_version', { simple: true }) as number;
    this.db.transaction(() => {
      for (let i = from; i < migrations.length; i++) migrations[i]!(this.db);
    })();
    if (migrations.length > from) this.db.pragma(`user_version = ${migrations.length}`);
  }

  upsertRun(r: RunRecord): void {
    this.db
      .prepare(
        `INSERT INTO runs (id, kind, status, output_dir, dataset_hash, base_model_hash, base_model, parent_id, config, created_at, finished_at)
         VALUES (@id, @kind, @status, @outputDir, @datasetHash, @baseModelHash, @baseModel, @parentId, @config, @createdAt, @finishedAt)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at, config = excluded.config`,
      )
      .run({
        id: r.id,
        kind: r.kind,
        status: r.status,
        outputDir: r.outputDir,
        datasetHash: r.datasetHash ?? null,
        baseModelHash: r.baseModelHash ?? null,
        baseModel: r.baseModel ?? null,
        parentId: r.parentId ?? null,
        config: JSON.stringify(r.config),
        createdAt: r.createdAt,
        finishedAt: r.finishedAt ?? null,
      });
  }

  setStatus(id: string, status: RunRecord['status']): void {
    this.db
      .prepare('UPDATE runs SET status = ?, finished_at = ? WHERE id = ?')
      .run(status, status === 'running' ? null : new Date().toISOString(), id);
  }

  getRun(id: string): RunRecord | undefined {
    const row = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return row ? toRun(row) : undefined;
  }

  listRuns(kind?: string): RunRecord[] {
    const rows = (
      kind
        ? this.db.prepare('SELECT * FROM runs WHERE kind = ? ORDER BY created_at').all(kind)
        : this.db.prepare('SELECT * FROM runs ORDER BY created_at').all()
    ) as Record<string, unknown>[];
    return rows.map(toRun);
  }

  /** Metrics are idempotent per (run, split, name, step): a resumed run rewrites the steps it repeats. */
  logMetrics(rows: readonly MetricRow[]): void {
    const ins = this.db.prepare(
      `INSERT INTO metrics (run_id, step, split, name, value) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(run_id, split, name, step) DO UPDATE SET value = excluded.value`,
    );
    this.db.transaction(() => {
      for (const m of rows) if (Number.isFinite(m.value)) ins.run(m.runId, m.step, m.split ?? 'train', m.name, m.value);
    })();
  }

  metrics(runId: string, name?: string): MetricRow[] {
    const rows = (
      name
        ? this.db.prepare('SELECT * FROM metrics WHERE run_id = ? AND name = ? ORDER BY step').all(runId, name)
        : this.db.prepare('SELECT * FROM metrics WHERE run_id = ? ORDER BY name, step').all(runId)
    ) as { run_id: string; step: number; split: string; name: string; value: number }[];
    return rows.map((r) => ({ runId: r.run_id, step: r.step, split: r.split, name: r.name, value: r.value }));
  }

  close(): void {
    this.db.close();
  }
}

function toRun(row: Record<string, unknown>): RunRecord {
  return {
    id: row.id as string,
    kind: row.kind as string,
    status: row.status as RunRecord['status'],
    outputDir: row.output_dir as string,
    datasetHash: (row.dataset_hash as string | null) ?? undefined,
    baseModelHash: (row.base_model_hash as string | null) ?? undefined,
    baseModel: (row.base_model as string | null) ?? undefined,
    parentId: (row.parent_id as string | null) ?? undefined,
    config: JSON.parse(row.config as string),
    createdAt: row.created_at as string,
    finishedAt: (row.finished_at as string | null) ?? undefined,
  };
}
