// Loom ONNX exports loaded by the real peer, transformers.js (@huggingface/transformers, local files only,
// env.allowRemoteModels = false): its logits must match Loom's engine to 1e-4 at fp32 and its greedy generate()
// must produce Loom's own greedy continuation, for Qwen2-style (qkv bias, untied), Llama-3-style (GQA, llama3 rope
// scaling, tied) and Qwen3 (q/k norm). The quantised files (q8 / q4) load and stay close.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { exportArtefact } from '../../src/export/export.ts';
import { TRANSFORMERS_JS_DTYPE } from '../../src/export/onnx/onnx.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { LLAMA3, makeTinyModel, QWEN2, QWEN3 } from './tiny-models.ts';

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'loom-onnx-'));
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = work;
});
after(() => rmSync(work, { recursive: true, force: true }));

const PROMPT = [1, 77, 300, 42, 9, 260, 128, 5];
const NEW = 12;

/** Loom's own greedy continuation through its KV-cache decoder (prefill, then one token per step). */
async function loomGreedy(lm: CausalLM, ids: number[], n: number): Promise<number[]> {
  const V = lm.config.vocabSize;
  let cache = lm.emptyCache(1);
  let step = await lm.step([ids], [ids.map(() => 1)], cache);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let v = 1; v < V; v++) if (step.logits[v]! > step.logits[best]!) best = v;
    out.push(best);
    cache = step.cache;
    step = await lm.step([[best]], [new Array(cache.pastLength + 1).fill(1)], cache);
  }
  return out;
}

async function peer(name: string, dtype: string) {
  return AutoModelForCausalLM.from_pretrained(name, { dtype: dtype as 'fp32', local_files_only: true, device: 'cpu' });
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function compare(dir: string, name: string, dtype: 'fp32' | 'int8' | 'int4') {
  const out = `${name}-onnx-${dtype}`;
  exportArtefact({ input: dir, format: 'onnx', dtype, out: join(work, out), skipCheck: true });
  const lm = await CausalLM.fromFolder(dir, { threads: 1 });
  const model = await peer(out, TRANSFORMERS_JS_DTYPE[dtype]);
  try {
    const ids = new Tensor('int64', BigInt64Array.from(PROMPT.map(BigInt)), [1, PROMPT.length]);
    const mask = new Tensor('int64', BigInt64Array.from(PROMPT.map(() => 1n)), [1, PROMPT.length]);
    const res = (await model({ input_ids: ids, attention_mask: mask })) as { logits: Tensor };
    const theirs = res.logits.data as Float32Array;
    const ours = await lm.forward([PROMPT]);
    const diff = maxDiff(theirs, ours);
    const gen = (await model.generate({
      input_ids: ids,
      attention_mask: mask,
      max_new_tokens: NEW,
      do_sample: false,
    } as never)) as Tensor;
    const peerIds = Array.from(gen.data as BigInt64Array, Number).slice(PROMPT.length);
    // generate() stops after an eos token, so Loom's continuation is cut there too
    const all = await loomGreedy(lm, PROMPT, NEW);
    const stop = all.findIndex((t) => lm.config.eosTokenId.includes(t));
    const loomIds = stop < 0 ? all : all.slice(0, stop + 1);
    return { diff, peerIds, loomIds, outDir: join(work, out) };
  } finally {
    await model.dispose();
    await lm.close();
  }
}

const VARIANTS = [QWEN2, LLAMA3, QWEN3];

describe('ONNX export loads in transformers.js (local files only)', () => {
  for (const [label, ov] of VARIANTS) {
    test(`${label}: fp32 logits within 1e-4, greedy generate() identical to Loom`, async () => {
      const name = label.split(' ')[0]!.replace(/\W/g, '');
      const r = await compare(makeTinyModel(work, name, ov), name, 'fp32');
      console.log(`# ${name} fp32 max |Δ logit| ${r.diff.toExponential(2)}, ${r.loomIds.length} tokens`);
      assert.ok(r.diff <= 1e-4, `max |Δ logit| = ${r.diff}`);
      assert.deepEqual(r.peerIds, r.loomIds);
      for (const f of ['onnx/model.onnx', 'config.json', 'generation_config.json', 'tokenizer.json']) {
        assert.ok(existsSync(join(r.outDir, f)), f);
      }
    });
  }

  test('transformers.js tokenizer and chat template load from the export', async () => {
    const dir = makeTinyModel(work, 'tok', { model_type: 'qwen2' });
    exportArtefact({ input: dir, format: 'onnx', dtype: 'fp32', out: join(work, 'tok-onnx'), skipCheck: true });
    const tok = await AutoTokenizer.from_pretrained('tok-onnx', { local_files_only: true });
    const text = tok.apply_chat_template([{ role: 'user', content: 'hi' }], {
      tokenize: false,
      add_generation_prompt: true,
    }) as string;
    assert.match(text, /<\|im_start\|>user\nhi<\|im_end\|>/);
    const cfg = JSON.parse(readFileSync(join(work, 'tok-onnx', 'config.json'), 'utf8'));
    assert.equal(cfg['transformers.js_config'].kv_cache_dtype, 'float32');
  });

  test('quantised files: model_quantized.onnx (q8) and model_q4.onnx (q4) load and stay close', async () => {
    const dir = makeTinyModel(work, 'quant', { model_type: 'qwen2', tie_word_embeddings: false });
    const q8 = await compare(dir, 'quant', 'int8');
    assert.ok(existsSync(join(q8.outDir, 'onnx', 'model_quantized.onnx')));
    assert.ok(q8.diff <= 0.3, `q8 max |Δ logit| = ${q8.diff}`);
    console.log(`# q8 max |Δ logit| ${q8.diff.toFixed(4)}`);
    const q4 = await compare(dir, 'quant', 'int4');
    assert.ok(existsSync(join(q4.outDir, 'onnx', 'model_q4.onnx')));
    console.log(`# q4 max |Δ logit| ${q4.diff.toFixed(4)}`);
    assert.ok(q4.diff <= 5, `q4 max |Δ logit| = ${q4.diff}`);
  });
});
