// HF export: the merged folder reloads with the same logits (fp32 bit-identical weights), keeps the chat template
// in tokenizer_config.json; unsupported dtypes are refused with a hint.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportArtefact, normalizeDtype } from '../../src/export/export.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { createModelFolder } from '../../src/models/folder.ts';

const work = mkdtempSync(join(tmpdir(), 'loom-export-hf-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('hf fp32 export reloads with identical logits and a chat template', async () => {
  const src = join(work, 'm');
  createModelFolder(src, { preset: 'tiny', seed: 3, overrides: { initializer_range: 0.2 } });
  const r = exportArtefact({ input: src, format: 'hf', dtype: 'fp32', out: join(work, 'hf') });
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'generation_config.json']) {
    assert.ok(existsSync(join(r.outDir, f)), f);
  }
  const tc = JSON.parse(readFileSync(join(r.outDir, 'tokenizer_config.json'), 'utf8'));
  assert.match(String(tc.chat_template), /im_start/);
  const a = await CausalLM.fromFolder(src, { threads: 1 });
  const b = await CausalLM.fromFolder(r.outDir, { threads: 1 });
  const ids = [[1, 50, 300, 7]];
  assert.deepEqual(await b.forward(ids), await a.forward(ids));
  a.close();
  b.close();
});

test('dtype aliases and refusals', () => {
  assert.equal(normalizeDtype('Q8_0'), 'int8');
  assert.equal(normalizeDtype('f16'), 'fp16');
  assert.throws(() => normalizeDtype('int3'), /unknown --dtype int3/);
  assert.throws(
    () => exportArtefact({ input: join(work, 'm'), format: 'hf', dtype: 'int8', out: join(work, 'x') }),
    /does not support --dtype int8/,
  );
});
