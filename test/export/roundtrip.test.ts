// The round-trip check of `loom export`: each artefact is read back from disk and compared with the source model;
// the verdict and provenance land in DIR/lineage.json. A corrupted artefact must be caught (the check can fail).
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportModel } from '../../src/export/export.ts';
import { readGguf } from '../../src/export/gguf/format.ts';
import { roundTrip } from '../../src/export/roundtrip.ts';
import { createModelFolder } from '../../src/models/folder.ts';

const work = mkdtempSync(join(tmpdir(), 'loom-export-rt-'));
after(() => rmSync(work, { recursive: true, force: true }));
const src = join(work, 'm');
createModelFolder(src, { preset: 'tiny', seed: 3, overrides: { initializer_range: 0.2, model_type: 'llama' } });

for (const [format, dtype] of [
  ['hf', 'fp32'],
  ['onnx', 'fp32'],
  ['gguf', 'fp32'],
] as const) {
  test(`${format} ${dtype}: round trip identical, lineage.json written`, async () => {
    const r = await exportModel({ input: src, format, dtype, out: join(work, `${format}-${dtype}`) });
    assert.ok('verdict' in r.check, 'checked');
    if (!('verdict' in r.check)) return;
    assert.equal(r.check.verdict, 'identical');
    assert.ok(r.check.max_abs_logit_diff <= 1e-4, String(r.check.max_abs_logit_diff));
    assert.equal(r.check.greedy_agreement, 1);
    assert.deepEqual(r.check.greedy_artefact, r.check.greedy_reference);
    assert.equal(r.check.greedy_prefix_agreement, 1);
    assert.ok(r.check.template_identical && r.check.stops_identical);
    assert.match(r.check.prompt, /<\|im_start\|>user\nHello! Where is my order\?<\|im_end\|>/);
    const l = JSON.parse(readFileSync(r.lineage, 'utf8'));
    assert.equal(l.format, format);
    assert.match(l.source.weights_sha256, /^[0-9a-f]{64}$/);
    assert.equal(l.config.model_type, 'llama');
    assert.equal(l.roundtrip.verdict, 'identical');
    assert.match(l.tool_version, /\d+\.\d+/);
  });
}

test('lower precision reports its agreement; the source hash is the same for every export of one model', async () => {
  const a = await exportModel({ input: src, format: 'gguf', dtype: 'int8', out: join(work, 'q8') });
  const b = await exportModel({ input: src, format: 'onnx', dtype: 'int8', out: join(work, 'onnx-q8') });
  const c = await exportModel({ input: src, format: 'onnx', dtype: 'fp16', out: join(work, 'onnx-f16') });
  const d = await exportModel({ input: src, format: 'onnx', dtype: 'int4', out: join(work, 'onnx-q4') });
  for (const r of [a, b, c, d]) {
    assert.ok('verdict' in r.check);
    if (!('verdict' in r.check)) return;
    assert.ok(r.check.max_abs_logit_diff > 0, 'quantised logits differ from fp32');
    assert.ok(r.check.greedy_agreement >= 0 && r.check.greedy_agreement <= 1);
    const l = JSON.parse(readFileSync(r.lineage, 'utf8'));
    assert.equal(l.roundtrip.agreement_reference, 'fp32 source');
    const { greedy_reference: ref, greedy_artefact: own, greedy_prefix_agreement: p } = l.roundtrip;
    assert.ok(own.length > 0);
    // the prefix share is the artefact's own tokens up to its first difference from the reference
    let k = 0;
    while (k < ref.length && own[k] === ref[k]) k++;
    assert.equal(p, k / ref.length);
    console.log(
      `# ${r.format} ${r.dtype}: agreement ${r.check.greedy_agreement}, prefix ${p}, Δ ${r.check.max_abs_logit_diff}`,
    );
  }
  assert.ok(c.check.checked.includes('model_fp16.onnx') && d.check.checked.includes('model_q4.onnx'));
  const la = JSON.parse(readFileSync(a.lineage, 'utf8'));
  const lb = JSON.parse(readFileSync(b.lineage, 'utf8'));
  assert.equal(la.source.weights_sha256, lb.source.weights_sha256);
});

test('a corrupted GGUF tensor is caught by the round trip', async () => {
  const r = await exportModel({ input: src, format: 'gguf', dtype: 'fp32', out: join(work, 'bad'), skipCheck: true });
  const h = readGguf(r.artefact);
  const t = h.tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!;
  const fd = openSync(r.artefact, 'r+');
  // overwrite the first 64 floats with 1.0
  writeSync(fd, Buffer.from(new Float32Array(64).fill(1).buffer), 0, 256, h.dataStart + t.offset);
  closeSync(fd);
  const c = await roundTrip(r);
  assert.ok('verdict' in c);
  if (!('verdict' in c)) return;
  assert.ok(c.max_abs_logit_diff > 1e-3, String(c.max_abs_logit_diff));
  assert.notEqual(c.verdict, 'identical');
});
