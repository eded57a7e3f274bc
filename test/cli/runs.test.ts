import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Registry } from '../../src/registry/db.ts';

function loom(args: string[], registry: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, LOOM_REGISTRY: registry },
  });
}

test('loom runs list and show read the SQLite registry', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'loom-runs-')), 'registry.db');
  const empty = loom(['runs', 'list'], file);
  assert.equal(empty.status, 0, empty.stderr);
  assert.match(empty.stdout, /no runs recorded yet/);

  const reg = new Registry(file);
  reg.upsertRun({
    id: 'pt-1',
    kind: 'train',
    status: 'finished',
    outputDir: '/x/pt',
    config: { lr: 1 },
    createdAt: '2026-01-01T00:00:00Z',
  });
  reg.upsertRun({
    id: 'lora-1',
    kind: 'train',
    status: 'finished',
    outputDir: '/x/lora',
    parentId: 'pt-1',
    config: {},
    createdAt: '2026-01-02T00:00:00Z',
  });
  reg.logMetrics([
    { runId: 'lora-1', step: 1, name: 'loss', value: 3 },
    { runId: 'lora-1', step: 2, name: 'loss', value: 2.5 },
  ]);
  reg.close();

  const list = loom(['runs', 'list'], file);
  assert.equal(list.status, 0, list.stderr);
  assert.deepEqual(
    list.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[0]),
    ['pt-1', 'lora-1'],
  );
  const show = loom(['runs', 'show', 'lora-1'], file);
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /parent\s+pt-1/);
  assert.match(show.stdout, /loss\s+2\.5 \(step 2\)/);
  const json = JSON.parse(loom(['runs', 'show', 'lora-1', '--json'], file).stdout) as { metrics: unknown[] };
  assert.equal(json.metrics.length, 2);
  const missing = loom(['runs', 'show', 'nope'], file);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /loom runs list/);
});
