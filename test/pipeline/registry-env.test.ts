import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { afterEach, test } from 'node:test';
import { pipelineRegistryPath } from '../../src/pipeline/run.ts';
import { defaultRegistryPath, registryFromEnv } from '../../src/registry/db.ts';

const saved = process.env.LOOM_REGISTRY;
afterEach(() => {
  if (saved === undefined) delete process.env.LOOM_REGISTRY;
  else process.env.LOOM_REGISTRY = saved;
});

const cfg = { name: 'p', registry: '.loom/registry.db', stages: {} };

test("LOOM_REGISTRY='' (or blanks) counts as unset: the default file, never a database named ''", () => {
  for (const blank of ['', '  ']) {
    process.env.LOOM_REGISTRY = blank;
    assert.equal(registryFromEnv(), undefined);
    assert.equal(defaultRegistryPath(), join(process.cwd(), '.loom', 'registry.db'));
    assert.equal(defaultRegistryPath('/p/.loom/registry.db'), '/p/.loom/registry.db');
    assert.equal(pipelineRegistryPath('/proj', cfg), '/proj/.loom/registry.db');
  }
});

test('a set LOOM_REGISTRY wins over the defaults; an explicit --registry wins over it', () => {
  process.env.LOOM_REGISTRY = '/tmp/x/reg.db';
  assert.equal(defaultRegistryPath(), '/tmp/x/reg.db');
  assert.equal(defaultRegistryPath('/p/.loom/registry.db'), '/tmp/x/reg.db');
  assert.equal(pipelineRegistryPath('/proj', cfg), '/tmp/x/reg.db');
  assert.equal(pipelineRegistryPath('/proj', cfg, 'mine.db'), resolve('mine.db'));
  delete process.env.LOOM_REGISTRY;
  assert.equal(pipelineRegistryPath('/proj', { ...cfg, registry: 'r/db.sqlite' }), '/proj/r/db.sqlite');
});
