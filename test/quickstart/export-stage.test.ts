import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportStage } from '../../src/export/quickstart.ts';
import { createModelFolder } from '../../src/models/folder.ts';

/** The quickstart's export stage on a stand-in LoRA run (a merged model where the train stage puts it). */
const out = mkdtempSync(join(tmpdir(), 'loom-qs-export-'));
after(() => rmSync(out, { recursive: true, force: true }));

test('quickstart export stage: GGUF Q8_0 and ONNX int8 with round-trip verdicts', async () => {
  assert.match((await exportStage(out)).summary, /skipped/);
  createModelFolder(join(out, 'train', 'lora', 'merged'), { preset: 'tiny', seed: 4 });
  const r = await exportStage(out);
  assert.match(r.summary, /GGUF Q8_0: .*-Q8_0\.gguf\n {2}round trip (identical|close|differs): greedy agreement/);
  assert.match(r.summary, /ONNX int8 .*\n {2}round trip (identical|close|differs)/);
  for (const f of r.outputs) assert.ok(existsSync(f), f);
  assert.ok(existsSync(join(out, 'export', 'onnx-int8', 'onnx', 'model_quantized.onnx')));
  const l = JSON.parse(readFileSync(join(out, 'export', 'gguf-q8_0', 'lineage.json'), 'utf8'));
  assert.equal(l.dtype, 'int8');
  assert.ok(l.roundtrip.greedy_agreement >= 0);
});
