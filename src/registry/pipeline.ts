import type { Registry } from './db.ts';

/**
 * Pipeline stage records, one row per executed (or skipped) stage of `loom run`. Each executed stage is also a run
 * in `runs` (kind `pipeline:<stage>`, parent = the upstream stage's run), so `loom runs list` and lineage see it.
 * Its own migration list under the `pipeline` version key keeps it independent of the other stages' tables.
 */
export interface StageRecord {
  runId: string;
  project: string;
  stage: string;
  /** sha256 over the stage's config and its inputs' content hashes. */
  fingerprint: string;
  /** path (relative to the project) → content hash, for the config files and inputs. */
  inputs: Record<string, string>;
  /** path (relative to the project) → content hash, written when the stage finished. */
  outputs: Record<string, string>;
  status: 'running' | 'finished' | 'failed';
  summary: string;
  startedAt: string;
  finishedAt?: string;
}

const MIGRATIONS = [
  (db: Registry['db']) => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS pipeline_stages (
        run_id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        stage TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        inputs TEXT NOT NULL,
        outputs TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL,
        finished_at TEXT
      );
      CREATE INDEX IF NOT EXISTS pipeline_stages_by_stage ON pipeline_stages(project, stage, started_at);
      -- runs a stage recorded itself (train runs), for lineage in both directions
      CREATE TABLE IF NOT EXISTS pipeline_children (
        stage_run TEXT NOT NULL,
        run_id TEXT NOT NULL,
        PRIMARY KEY (stage_run, run_id)
      );
    `);
  },
];

export class PipelineStages {
  constructor(readonly registry: Registry) {
    registry.migrate(MIGRATIONS, 'pipeline');
  }

  put(r: StageRecord): void {
    this.registry.db
      .prepare(
        `INSERT INTO pipeline_stages (run_id, project, stage, fingerprint, inputs, outputs, status, summary, started_at, finished_at)
         VALUES (@runId, @project, @stage, @fingerprint, @inputs, @outputs, @status, @summary, @startedAt, @finishedAt)
         ON CONFLICT(run_id) DO UPDATE SET outputs = excluded.outputs, status = excluded.status,
           summary = excluded.summary, finished_at = excluded.finished_at`,
      )
      .run({
        ...r,
        inputs: JSON.stringify(r.inputs),
        outputs: JSON.stringify(r.outputs),
        finishedAt: r.finishedAt ?? null,
      });
  }

  linkChild(stageRun: string, runId: string): void {
    this.registry.db
      .prepare('INSERT OR IGNORE INTO pipeline_children (stage_run, run_id) VALUES (?, ?)')
      .run(stageRun, runId);
  }

  children(stageRun: string): string[] {
    const rows = this.registry.db.prepare('SELECT run_id FROM pipeline_children WHERE stage_run = ?').all(stageRun) as {
      run_id: string;
    }[];
    return rows.map((r) => r.run_id);
  }

  /** The newest record of a stage in a project (any status). */
  last(project: string, stage: string): StageRecord | undefined {
    const row = this.registry.db
      .prepare(
        'SELECT * FROM pipeline_stages WHERE project = ? AND stage = ? ORDER BY started_at DESC, rowid DESC LIMIT 1',
      )
      .get(project, stage) as Record<string, unknown> | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** The newest finished record of a stage in a project. */
  lastFinished(project: string, stage: string): StageRecord | undefined {
    const row = this.registry.db
      .prepare(
        "SELECT * FROM pipeline_stages WHERE project = ? AND stage = ? AND status = 'finished' ORDER BY started_at DESC, rowid DESC LIMIT 1",
      )
      .get(project, stage) as Record<string, unknown> | undefined;
    return row ? toRecord(row) : undefined;
  }

  get(runId: string): StageRecord | undefined {
    const row = this.registry.db.prepare('SELECT * FROM pipeline_stages WHERE run_id = ?').get(runId) as
      | Record<string, unknown>
      | undefined;
    return row ? toRecord(row) : undefined;
  }

  all(): StageRecord[] {
    const rows = this.registry.db.prepare('SELECT * FROM pipeline_stages ORDER BY started_at, rowid').all() as Record<
      string,
      unknown
    >[];
    return rows.map(toRecord);
  }
}

function toRecord(row: Record<string, unknown>): StageRecord {
  return {
    runId: row.run_id as string,
    project: row.project as string,
    stage: row.stage as string,
    fingerprint: row.fingerprint as string,
    inputs: JSON.parse(row.inputs as string) as Record<string, string>,
    outputs: JSON.parse(row.outputs as string) as Record<string, string>,
    status: row.status as StageRecord['status'],
    summary: row.summary as string,
    startedAt: row.started_at as string,
    finishedAt: (row.finished_at as string | null) ?? undefined,
  };
}
