import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { applyOverrides, loadConfig } from '../../src/config/load.ts';
import { LoomError } from '../../src/core/errors.ts';

const schema = z.object({
  learning_rate: z.number().positive(),
  lr_scheduler_type: z.enum(['constant', 'linear', 'cosine']).default('cosine'),
  data: z.object({ seed: z.number().int().default(0) }).default({ seed: 0 }),
});

function tmpFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'loom-cfg-'));
  const p = join(dir, 'c.yaml');
  writeFileSync(p, text);
  return p;
}

test('overrides parse YAML scalars and reach nested keys', () => {
  const out = applyOverrides({ a: 1, data: { seed: 1 } }, ['a=2e-4', 'data.seed=7', 'list=[x,y]', 'flag=true']);
  assert.deepEqual(out, { a: 2e-4, data: { seed: 7 }, list: ['x', 'y'], flag: true });
});

test('override without = is a typed error', () => {
  assert.throws(
    () => applyOverrides({}, ['nokey']),
    (e: unknown) => e instanceof LoomError && e.code === 'OVERRIDE_INVALID',
  );
});

test('loadConfig applies defaults and overrides', () => {
  const p = tmpFile('learning_rate: 0.001\n');
  const { config } = loadConfig(p, schema, ['data.seed=3']);
  assert.equal(config.learning_rate, 0.001);
  assert.equal(config.lr_scheduler_type, 'cosine');
  assert.equal(config.data.seed, 3);
});

test('invalid value names the key, its line and the allowed values', () => {
  const p = tmpFile('learning_rate: 0.001\nlr_scheduler_type: cosin\n');
  assert.throws(
    () => loadConfig(p, schema),
    (e: unknown) =>
      e instanceof LoomError &&
      e.code === 'CONFIG_INVALID' &&
      e.line === 2 &&
      e.field === 'lr_scheduler_type' &&
      /constant, linear, cosine/.test(e.message),
  );
});

test('YAML syntax error reports the line', () => {
  const p = tmpFile('a: 1\nb: [1, 2\nc: 3\n');
  assert.throws(
    () => loadConfig(p, schema),
    (e: unknown) => e instanceof LoomError && e.code === 'CONFIG_PARSE' && typeof e.line === 'number',
  );
});

test('missing file is CONFIG_NOT_FOUND', () => {
  assert.throws(
    () => loadConfig('/nonexistent/x.yaml', schema),
    (e: unknown) => e instanceof LoomError && e.code === 'CONFIG_NOT_FOUND',
  );
});

test('overrides index into lists by position', () => {
  const out = applyOverrides({ models: [{ id: 'a' }, { id: 'b', base_url: 'x' }] }, ['models.1.base_url=http://h/v1']);
  assert.deepEqual(out, { models: [{ id: 'a' }, { id: 'b', base_url: 'http://h/v1' }] });
});

test('a bad override value names the command-line override, not a YAML line', () => {
  const p = tmpFile('learning_rate: 0.001\nlr_scheduler_type: cosine\n');
  assert.throws(
    () => loadConfig(p, schema, ['lr_scheduler_type=cosin']),
    (e: unknown) =>
      e instanceof LoomError &&
      e.code === 'CONFIG_INVALID' &&
      e.line === undefined &&
      e.field === 'lr_scheduler_type' &&
      e.message.includes('"lr_scheduler_type=cosin"') &&
      /command line/.test(e.file ?? ''),
  );
});

test('a bad nested override names the override that set its section', () => {
  const p = tmpFile('learning_rate: 0.001\n');
  assert.throws(
    () => loadConfig(p, schema, ['data.seed=abc']),
    (e: unknown) => e instanceof LoomError && e.line === undefined && e.message.includes('"data.seed=abc"'),
  );
});

test('a bad YAML value still points at its line when overrides touch other keys', () => {
  const p = tmpFile('learning_rate: 0.001\nlr_scheduler_type: cosin\n');
  assert.throws(
    () => loadConfig(p, schema, ['data.seed=3']),
    (e: unknown) => e instanceof LoomError && e.line === 2 && !e.message.includes('override'),
  );
});

test('an unknown key suggests the nearest valid key', () => {
  const strict = z.strictObject({
    learning_rate: z.number(),
    data: z.strictObject({ seed: z.number().default(0) }).default({ seed: 0 }),
  });
  const p = tmpFile('learning_rate: 0.001\nlearning_rat: 0.1\n');
  assert.throws(
    () => loadConfig(p, strict),
    (e: unknown) => e instanceof LoomError && e.line === 2 && e.hint === 'did you mean learning_rate?',
  );
  const q = tmpFile('learning_rate: 0.001\ndata:\n  sed: 3\n');
  assert.throws(
    () => loadConfig(q, strict),
    (e: unknown) => e instanceof LoomError && e.line === 3 && e.hint === 'did you mean data.seed?',
  );
  // Far from every valid key: no guess, the usual hint.
  const r = tmpFile('learning_rate: 0.001\nzzzzzzzz: 1\n');
  assert.throws(
    () => loadConfig(r, strict),
    (e: unknown) => e instanceof LoomError && !/did you mean/.test(e.hint ?? ''),
  );
});

test('an unknown key typed as an override names the override and suggests the key', () => {
  const strict = z.strictObject({ learning_rate: z.number() });
  const p = tmpFile('learning_rate: 0.001\n');
  assert.throws(
    () => loadConfig(p, strict, ['learning_rat=0.1']),
    (e: unknown) =>
      e instanceof LoomError && e.message.includes('"learning_rat=0.1"') && e.hint === 'did you mean learning_rate?',
  );
});
