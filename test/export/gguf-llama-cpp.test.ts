// Loom GGUF files loaded by the real peer, llama.cpp (node-llama-cpp@3.21.1, prebuilt CPU binary, no network):
// next-token log-probabilities must match Loom's engine to 1e-4 at F32 and the greedy continuation must be
// identical, for Qwen2-style (qkv bias, untied), Llama-3-style (GQA, llama3 rope scaling, tied) and Qwen3 (q/k norm).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Llama, Token } from 'node-llama-cpp';
import { exportArtefact } from '../../src/export/export.ts';
import { readGguf } from '../../src/export/gguf/format.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { exactF32Context, offlineLlama } from '../../tools/reference/llama-cpp.ts';
import { LLAMA_ATTN_BIAS, LLAMA3, logSoftmax, makeTinyModel, QWEN2, QWEN3 } from './tiny-models.ts';

let work: string;
let llama: Llama;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'loom-gguf-'));
  llama = await offlineLlama();
});
after(async () => {
  await llama?.dispose();
  rmSync(work, { recursive: true, force: true });
});

async function compare(dir: string, dtype: 'fp32' | 'fp16' | 'int8' | 'int4') {
  const r = exportArtefact({ input: dir, format: 'gguf', dtype, out: join(dir, `gguf-${dtype}`), skipCheck: true });
  const lm = await CausalLM.fromFolder(dir, { threads: 2 });
  const model = await llama.loadModel({ modelPath: r.artefact, gpuLayers: 0 });
  // the plain attention path over an F32 cache (exactF32Context says why)
  const ctx = await exactF32Context(model);
  try {
    const V = lm.config.vocabSize;
    const ids = [1, 77, 300, 42, 9, 260, 128, 5];
    const logits = await lm.forward([ids]);
    const seq = ctx.getSequence();
    const out = await seq.controlledEvaluate(
      ids.map((t): [Token, { generateNext: { probabilities: true; options: Record<string, number> } }] => [
        t as Token,
        { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } },
      ]),
    );
    let worst = 0;
    for (let p = 0; p < ids.length; p++) {
      const ref = logSoftmax(logits, p * V, V);
      const probs = out[p]?.next?.probabilities;
      assert.ok(probs && probs.size === V, `llama.cpp returned ${probs?.size} probabilities, expected ${V}`);
      // compare where the probability is representable (log of a float32 probability above 1e-30)
      for (let v = 0; v < V; v++) {
        const q = probs.get(v as Token) ?? 0;
        if (q > 1e-30) worst = Math.max(worst, Math.abs(Math.log(q) - ref[v]!));
      }
    }
    // greedy: 12 tokens from llama.cpp's own sampler at temperature 0 vs Loom's argmax decode
    const loomIds: number[] = [];
    let cur = [...ids];
    for (let i = 0; i < 12; i++) {
      const l = await lm.forward([cur]);
      let best = 0;
      for (let v = 1; v < V; v++) if (l[(cur.length - 1) * V + v]! > l[(cur.length - 1) * V + best]!) best = v;
      loomIds.push(best);
      cur = [...cur, best];
    }
    seq.dispose();
    const seq2 = ctx.getSequence();
    const cppIds: number[] = [];
    for await (const t of seq2.evaluate(ids as Token[], { temperature: 0, yieldEogToken: true })) {
      cppIds.push(t);
      if (cppIds.length === 12) break;
    }
    return { worst, loomIds, cppIds, file: r.artefact };
  } finally {
    await ctx.dispose();
    await model.dispose();
    lm.close();
  }
}

const VARIANTS = [QWEN2, LLAMA3, LLAMA_ATTN_BIAS, QWEN3];

describe('GGUF export loads in llama.cpp (node-llama-cpp 3.21.1)', () => {
  for (const [label, ov] of VARIANTS) {
    test(`${label}: F32 log-probs within 1e-4, greedy identical`, async () => {
      const dir = makeTinyModel(work, label.split(' ')[0]!.replace(/\W/g, ''), ov);
      const r = await compare(dir, 'fp32');
      console.log(`# ${label}: F32 max |Δ log p| ${r.worst.toExponential(2)}`);
      assert.ok(r.worst <= 1e-4, `max |Δ log p| = ${r.worst}`);
      assert.deepEqual(r.cppIds, r.loomIds);
    });
  }
  test('F16 / Q8_0 load and stay close; header carries arch, tokenizer and template', async () => {
    const dir = makeTinyModel(work, 'quant', { model_type: 'qwen2', tie_word_embeddings: false });
    for (const [dtype, tol] of [
      ['fp16', 5e-2],
      ['int8', 0.6],
    ] as const) {
      const r = await compare(dir, dtype);
      console.log(`# ${dtype}: max |Δ log p| ${r.worst.toExponential(2)}`);
      assert.ok(r.worst <= tol, `${dtype}: max |Δ log p| = ${r.worst}`);
    }
    const h = readGguf(join(dir, 'gguf-int8', 'quant-Q8_0.gguf'));
    assert.equal(h.kv.get('general.architecture'), 'qwen2');
    assert.equal((h.kv.get('tokenizer.ggml.tokens') as string[]).length, 512);
    assert.equal(h.kv.get('tokenizer.ggml.eos_token_id'), 2);
    assert.match(String(h.kv.get('tokenizer.chat_template')), /im_start/);
    assert.equal(h.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.type, 'Q8_0');
    assert.equal(h.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')?.type, 'F32');
  });
});
