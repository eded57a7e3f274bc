import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from '../../src/registry/db.ts';

test('runs with lineage and idempotent metrics', () => {
  const r = new Registry(':memory:');
  r.upsertRun({
    id: 'a',
    kind: 'train',
    status: 'running',
    outputDir: '/x',
    datasetHash: 'd1',
    baseModelHash: 'm1',
    config: { lr: 1 },
    createdAt: '2026-01-01',
  });
  r.upsertRun({
    id: 'b',
    kind: 'train',
    status: 'running',
    outputDir: '/y',
    parentId: 'a',
    config: {},
    createdAt: '2026-01-02',
  });
  r.logMetrics([{ runId: 'a', step: 1, name: 'loss', value: 2 }]);
  r.logMetrics([
    { runId: 'a', step: 1, name: 'loss', value: 1.5 },
    { runId: 'a', step: 2, name: 'loss', value: 1 },
  ]);
  assert.deepEqual(
    r.metrics('a', 'loss').map((m) => m.value),
    [1.5, 1],
  );
  r.setStatus('a', 'finished');
  assert.equal(r.getRun('a')!.status, 'finished');
  assert.equal(r.getRun('b')!.parentId, 'a');
  assert.deepEqual(r.getRun('a')!.config, { lr: 1 });
  r.migrate([(db) => db.exec('CREATE TABLE evals (id TEXT)')], 'eval');
  r.migrate([(db) => db.exec('CREATE TABLE evals (id TEXT)')], 'eval');
  r.close();
});
