import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Registry } from '../registry/db.ts';
import { type RunResult, runFailed } from './suite/results.ts';

/**
 * Eval runs in the registry: a `runs` row of kind `eval`, one metric row per (task, model, prompt, metric), and
 * an `eval_models` row per model under test that links to the run which produced it (from the model folder's
 * lineage.json when it has one), so a score can be traced to its adapter, base model and dataset.
 */
const EVAL_MIGRATIONS = [
  (db: Registry['db']) => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS eval_models (
        run_id TEXT NOT NULL REFERENCES runs(id),
        label TEXT NOT NULL,
        model_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        path TEXT,
        adapter TEXT,
        source_run TEXT,
        PRIMARY KEY (run_id, label)
      );
    `);
  },
];

/**
 * The training run that produced a model or adapter folder, when it says so: `lineage.json` in the folder or in
 * its parent (a train run writes it at the run's root, next to `adapter/` or `model/`).
 */
function sourceRunOf(dir: string | undefined): string | undefined {
  if (!dir) return undefined;
  const p = [join(dir, 'lineage.json'), join(dirname(dir), 'lineage.json')].find(existsSync);
  if (!p) return undefined;
  try {
    const l = JSON.parse(readFileSync(p, 'utf8')) as { run_id?: unknown; runId?: unknown };
    const id = l.run_id ?? l.runId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

function metricName(task: string, model: string, prompt: string, metric: string): string {
  return `${task}/${model}/${prompt}/${metric}`;
}

export function recordEvalRun(reg: Registry, run: RunResult, dir: string): void {
  reg.migrate(EVAL_MIGRATIONS, 'eval');
  const sources = run.models.map((m) => sourceRunOf(m.adapter) ?? sourceRunOf(m.path));
  reg.upsertRun({
    id: run.runId,
    kind: 'eval',
    status: runFailed(run) ? 'failed' : run.finished ? 'finished' : 'interrupted',
    outputDir: dir,
    parentId: sources.find((s) => s !== undefined && reg.getRun(s) !== undefined),
    config: { suite: run.suitePath, configHash: run.configHash, datasets: run.datasets ?? [] },
    createdAt: run.started,
    finishedAt: run.finished,
  });
  const ins = reg.db.prepare(
    `INSERT OR REPLACE INTO eval_models (run_id, label, model_id, kind, path, adapter, source_run) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  run.models.forEach((m, i) => {
    ins.run(run.runId, m.id, m.modelId, m.kind, m.path ?? null, m.adapter ?? null, sources[i] ?? null);
  });
  reg.logMetrics(
    run.tasks.flatMap((t) =>
      Object.entries(t.summary).map(([metric, s]) => ({
        runId: run.runId,
        step: 0,
        split: 'eval',
        name: metricName(t.task, t.model, t.prompt, metric),
        value: s.score,
      })),
    ),
  );
}
