// `loom chat` / LocalChatModel / CausalLM.load on an ONNX export folder: the exported file itself answers, with the
// source model folder's logits (1e-4: same ONNX Runtime, same graph) and exactly its greedy tokens, through both
// the plain step() path and the resident-KV decode() path generate() uses; `loom chat <export>` works on a pipe.
// `loom chat <file.gguf>` (a CLI subprocess driving the llama.cpp peer) is in chat-gguf.e2e.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportArtefact } from '../../src/export/export.ts';
import { CausalLM, isOnnxExport } from '../../src/generate/causal-lm.ts';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { generateIds } from '../../src/generate/generate.ts';
import { LLAMA3, makeTinyModel, QWEN2 } from './tiny-models.ts';

const work = mkdtempSync(join(tmpdir(), 'loom-export-chat-'));
after(() => rmSync(work, { recursive: true, force: true }));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Greedy ids by the plain step() path with the argmax taken here, independent of decode()'s next ids. */
async function stepGreedy(lm: CausalLM, ids: number[], n: number): Promise<number[]> {
  const V = lm.config.vocabSize;
  let s = await lm.step([ids], [ids.map(() => 1)], lm.emptyCache(1));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let v = 1; v < V; v++) if (s.logits[v]! > s.logits[best]!) best = v;
    out.push(best);
    s = await lm.step([[best]], [new Array(s.cache.pastLength + 1).fill(1)], s.cache);
  }
  return out;
}

for (const [label, overrides] of [QWEN2, LLAMA3]) {
  test(`CausalLM.load on an ONNX export: logits and greedy tokens of the source (${label})`, async () => {
    const name = label.split(' ')[0]!;
    const src = makeTinyModel(work, name, overrides);
    const out = join(work, `${name}-onnx`);
    exportArtefact({ input: src, format: 'onnx', dtype: 'fp32', out, skipCheck: true });
    assert.equal(isOnnxExport(out), true);
    assert.equal(isOnnxExport(src), false);
    const a = await CausalLM.load(src, { threads: 1 });
    const b = await CausalLM.load(out, { threads: 1 });
    try {
      assert.equal(a.onnxPath, undefined);
      assert.equal(b.onnxPath, join(out, 'onnx', 'model.onnx'));
      const ids = [1, 50, 300, 7, 9, 260];
      const fwd = maxDiff(await a.forward([ids]), await b.forward([ids]));
      assert.ok(fwd <= 1e-4, `forward max |Δ| ${fwd}`);
      // batched, left-padded: the export's all-position logits are cut to each row's last position
      const rows = [
        [0, 0, 5, 6],
        [1, 2, 3, 4],
      ];
      const mask = [
        [0, 0, 1, 1],
        [1, 1, 1, 1],
      ];
      const sa = await a.step(rows, mask, a.emptyCache(2));
      const sb = await b.step(rows, mask, b.emptyCache(2));
      assert.equal(sb.logits.length, 2 * a.config.vocabSize);
      const d = maxDiff(sa.logits, sb.logits);
      assert.ok(d <= 1e-4, `prefill step max |Δ| ${d}`);
      const want = await stepGreedy(a, ids, 12);
      assert.deepEqual(await stepGreedy(b, ids, 12), want);
      // generate() runs decode() with the KV cache resident: the export's greedy ids are the source's
      const ga = await generateIds(a, [ids], { maxNewTokens: 12, temperature: 0, eosIds: [] });
      const gb = await generateIds(b, [ids], { maxNewTokens: 12, temperature: 0, eosIds: [] });
      assert.deepEqual(ga[0]!.ids, want);
      assert.deepEqual(gb[0]!.ids, want);
    } finally {
      await a.close();
      await b.close();
    }
  });
}

test('LocalChatModel and `loom chat` on the export give the source model’s greedy reply', async () => {
  const src = makeTinyModel(work, 'chat', QWEN2[1]);
  const out = join(work, 'chat-onnx');
  exportArtefact({ input: src, format: 'onnx', dtype: 'int8', out, skipCheck: true });
  const msgs = [{ role: 'user' as const, content: 'hello there' }];
  const a = await LocalChatModel.fromFolder(src, { threads: 1 });
  const b = await LocalChatModel.fromFolder(out, { threads: 1, file: 'model.onnx' });
  // an int8 export runs its own file by default (config.json's transformers.js_config.dtype)
  const q = await LocalChatModel.fromFolder(out, { threads: 1 });
  try {
    assert.equal(q.lm.onnxPath, join(out, 'onnx', 'model_quantized.onnx'));
    const ra = await a.chat(msgs, { maxNewTokens: 12, temperature: 0 });
    const rb = await b.chat(msgs, { maxNewTokens: 12, temperature: 0 });
    assert.equal(rb.text, ra.text);
    assert.equal(rb.usage.completionTokens, ra.usage.completionTokens);
    const cli = execFileSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'chat', out, '--onnx-file', 'model.onnx', '--max-new-tokens', '12'],
      { input: 'hello there\n', encoding: 'utf8', timeout: 120_000 },
    );
    // the CLI adds a note when the reply hit --max-new-tokens
    assert.equal(cli.split('\n(stopped at')[0]!.trim(), ra.text.trim());
  } finally {
    await a.close();
    await b.close();
    await q.close();
  }
});

test('CausalLM.load names the files an export holds when asked for one it lacks', async () => {
  const src = makeTinyModel(work, 'missing', QWEN2[1]);
  const out = join(work, 'missing-onnx');
  exportArtefact({ input: src, format: 'onnx', dtype: 'fp32', out, skipCheck: true });
  await assert.rejects(CausalLM.load(out, { file: 'model_fp16.onnx' }), (e: Error) => {
    assert.match(e.message, /no onnx\/model_fp16\.onnx/);
    assert.match((e as Error & { hint?: string }).hint ?? '', /model\.onnx/);
    return true;
  });
});
