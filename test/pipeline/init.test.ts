import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { dataConfig } from '../../src/config/data.ts';
import { suiteSchema } from '../../src/config/eval.ts';
import { loadConfig } from '../../src/config/load.ts';
import { loadServeConfig } from '../../src/config/serve.ts';
import { trainConfigSchema } from '../../src/config/train.ts';
import { isLoomError } from '../../src/core/errors.ts';
import { loadPipelineConfig } from '../../src/pipeline/config.ts';
import { hashPath } from '../../src/pipeline/hash.ts';
import { initProject } from '../../src/pipeline/init.ts';
import { TEMPLATES } from '../../src/pipeline/templates.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'loom-init-'));

for (const t of TEMPLATES) {
  for (const noTrain of [false, true]) {
    test(`loom init --template ${t}${noTrain ? ' --no-train' : ''} writes configs that validate`, () => {
      const dir = join(tmp(), 'p');
      const r = initProject(dir, t, { noTrain });
      for (const f of ['data.yaml', 'eval.yaml', 'serve.yaml', 'pipeline.yaml', 'prompts/default.yaml']) {
        assert.ok(r.files.includes(f), f);
      }
      assert.equal(r.files.includes('train.yaml'), !noTrain);
      const p = loadPipelineConfig(join(dir, 'pipeline.yaml')).config;
      assert.equal(p.stages.train === undefined, noTrain);
      assert.equal(p.stages.data?.config, 'data.yaml');
      loadConfig(join(dir, 'data.yaml'), dataConfig);
      loadConfig(join(dir, 'eval.yaml'), suiteSchema);
      loadServeConfig(join(dir, 'serve.yaml'));
      if (!noTrain) {
        loadConfig(join(dir, 'train.yaml'), trainConfigSchema);
        loadConfig(join(dir, 'pretrain.yaml'), trainConfigSchema);
      }
      // sample data ships with its source note
      assert.ok(readdirSync(join(dir, 'data'), { recursive: true }).some((f) => String(f).endsWith('SOURCE.md')));
    });
  }
}

test('loom init refuses a non-empty folder and leaves its files untouched', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'mine.txt'), 'keep me');
  assert.throws(
    () => initProject(dir, 'faq-qa'),
    (e) => isLoomError(e) && /not empty/.test(e.message) && e.code === 'OUTPUT_WRITE',
  );
  assert.deepEqual(readdirSync(dir), ['mine.txt']);
  assert.equal(readFileSync(join(dir, 'mine.txt'), 'utf8'), 'keep me');
});

test('loom init rejects an unknown template by name', () => {
  assert.throws(
    () => initProject(join(tmp(), 'x'), 'chatbot'),
    (e) => isLoomError(e) && /unknown template 'chatbot'/.test(e.message) && /customer-service/.test(e.hint ?? ''),
  );
});

test('hashPath: a file hashes to its sha256 (FIPS 180-2 "abc" vector); folders follow content, not mtime', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'a.txt'), 'abc');
  assert.equal(hashPath(join(dir, 'a.txt')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  mkdirSync(join(dir, 'd'));
  writeFileSync(join(dir, 'd', 'x'), '1');
  const h1 = hashPath(join(dir, 'd'));
  utimesSync(join(dir, 'd', 'x'), new Date(0), new Date(0));
  assert.equal(hashPath(join(dir, 'd')), h1, 'a touched file is not a change');
  writeFileSync(join(dir, 'd', 'x'), '2');
  assert.notEqual(hashPath(join(dir, 'd')), h1);
  assert.equal(hashPath(join(dir, 'nope')), 'missing');
  assert.notEqual(h1, createHash('sha256').update('1').digest('hex'), 'a folder hash includes the file names');
});
