// Loom ONNX exports loaded by the real peer, transformers.js (@huggingface/transformers, local files only,
// env.allowRemoteModels = false): its logits must match Loom's engine to 1e-4 at fp32 and its greedy generate()
// must produce Loom's own greedy continuation, for Qwen2-style (qkv bias, untied), Llama-3-style (GQA, llama3 rope
// scaling, tied) and Qwen3 (q/k norm). The fp16 / q8 / q4 files load with the matching `dtype`, give Loom's
// logits and greedy continuation on that same file, and stay close to fp32.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { exportArtefact } from '../../src/export/export.ts';
import { TRANSFORMERS_JS_DTYPE } from '../../src/export/onnx/onnx.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { loadWeights } from '../../src/models/folder.ts';
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

async function compare(dir: string, name: string, dtype: 'fp32' | 'fp16' | 'int8' | 'int4') {
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
    return { diff, peerIds, loomIds, outDir: join(work, out), theirs };
  } finally {
    await model.dispose();
    await lm.close();
  }
}

/** Loom's engine on the exported file itself (CausalLM.load picks the export's dtype): logits and greedy ids. */
async function loomOnFile(outDir: string) {
  const lm = await CausalLM.load(outDir, { threads: 1 });
  try {
    const logits = await lm.forward([PROMPT]);
    const all = await loomGreedy(lm, PROMPT, NEW);
    const stop = all.findIndex((t) => lm.config.eosTokenId.includes(t));
    return { file: lm.onnxPath, logits, ids: stop < 0 ? all : all.slice(0, stop + 1) };
  } finally {
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

  // Bounds vs fp32 on these random tiny models (weights of std 0.2, a worst case for 4-bit blocks): fp16 rounds each
  // weight by <= 2^-11 relative, int8 blocks by <= 1/256 of the block max, int4 by <= 1/16 of it; int8's bound
  // allows for the embedding table being 8-bit too (its rounding enters every layer's input).
  const LOWER: ['fp16' | 'int8' | 'int4', string, number, boolean][] = [
    ['fp16', 'model_fp16.onnx', 0.05, false],
    ['int8', 'model_quantized.onnx', 0.6, false],
    ['int4', 'model_q4.onnx', 5, false],
    ['int8', 'model_quantized.onnx', 0.6, true],
    ['int4', 'model_q4.onnx', 5, true],
  ];
  for (const [dtype, file, bound, tied] of LOWER) {
    const how = tied ? ' (tied head: one quantised table for Gather and head)' : '';
    test(`${dtype}: onnx/${file} loads with dtype '${TRANSFORMERS_JS_DTYPE[dtype]}' and matches Loom on that file${how}`, async () => {
      const name = `q-${dtype}${tied ? '-tied' : ''}`;
      const dir = makeTinyModel(work, name, { model_type: 'qwen2', tie_word_embeddings: tied });
      const r = await compare(dir, name, dtype);
      const path = join(r.outDir, 'onnx', file);
      const bytes = readFileSync(path);
      const fp32 = readFileSync(join(r.outDir, 'onnx', 'model.onnx')).length;
      // Analytic size: every matrix (all 2-D weights, the embedding table included: GatherBlockQuantized reads it
      // from the same blocks as MatMulNBits) shrinks from 4 B per value to 2 (fp16), or to 1 + 2/32 (int8: one
      // float16 scale per block of 32, implicit zero point 2^(bits-1) as in ORT's MatMulNBits spec) or, in int4,
      // 0.5 + 2/32 (nibbles) for the layers and 1 + 2/32 for the vocabulary matrices (embedding table, LM head:
      // 8-bit, as llama.cpp keeps them above 4 bits). A tied model has no lm_head.weight: its table is stored once.
      let mats = 0;
      let vocab = 0;
      for (const [name, t] of loadWeights(dir)) {
        if (t.dims.length !== 2) continue;
        mats += t.data.length;
        if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') vocab += t.data.length;
      }
      const per8 = 1 + 2 / 32;
      const per4 = 0.5 + 2 / 32;
      const want =
        dtype === 'fp16'
          ? fp32 - 2 * mats
          : dtype === 'int8'
            ? fp32 - mats * (4 - per8)
            : fp32 - (mats - vocab) * (4 - per4) - vocab * (4 - per8);
      assert.ok(Math.abs(bytes.length - want) <= 0.02 * want, `${file} ${bytes.length} B, analytic ${want} B`);
      if (dtype !== 'fp16') {
        assert.ok(bytes.includes('MatMulNBits'), 'quantised file uses com.microsoft.MatMulNBits');
        assert.ok(
          bytes.includes('GatherBlockQuantized'),
          'the embedding is read by com.microsoft.GatherBlockQuantized',
        );
      }
      const own = await loomOnFile(r.outDir);
      assert.equal(own.file, path);
      // same file, same ONNX Runtime: transformers.js must agree with Loom exactly on this file ...
      const same = maxDiff(r.theirs, own.logits);
      assert.ok(same <= 1e-4, `transformers.js vs Loom on ${file}: max |Δ logit| ${same}`);
      assert.deepEqual(r.peerIds, own.ids);
      // ... and the file is really the lower-precision one (not the fp32 one loaded by mistake), close to fp32
      console.log(
        `# ${dtype} vs fp32 max |Δ logit| ${r.diff.toFixed(4)}; peer vs Loom on file ${same.toExponential(1)}`,
      );
      assert.ok(r.diff > 1e-4, `${file} gives fp32's logits (${r.diff}): not the ${dtype} weights`);
      assert.ok(r.diff <= bound, `${dtype} max |Δ logit| vs fp32 = ${r.diff}`);
    });
  }
});
