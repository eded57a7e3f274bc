// KV-cache decoding must give the logits of a full forward pass at every step (the full forward itself is
// checked against PyTorch in test/models/llama.test.ts), also with left padding and chunked prefill.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine, toOnnx } from '../../src/engine/index.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { readHfConfig } from '../../src/models/config.ts';
import { loadWeights } from '../../src/models/folder.ts';
import { buildLlama } from '../../src/models/llama.ts';
import { maxAbsDiff } from '../models/compare.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');
const TOL = 1e-4;

function rowOf(logits: Float32Array, V: number, index: number): Float32Array {
  return logits.subarray(index * V, (index + 1) * V);
}

let engine: Engine;
before(async () => {
  engine = await Engine.create({ threads: 2 });
});
after(async () => {
  await engine.close();
});

describe('KV-cache decoding equals the full forward pass', () => {
  for (const variant of ['llama3', 'qwen3', 'mistral', 'qwen2']) {
    test(variant, async () => {
      // Decode with the fused inference graph (what generation runs); compare with the plain graph's forward.
      const lm = await CausalLM.fromFolder(join(FIXTURES, variant), { engine, fused: true });
      const plain = await CausalLM.fromFolder(join(FIXTURES, variant), { engine, fused: false });
      const V = lm.config.vocabSize;
      const seq = [5, 17, 99, 3, 42, 7, 61, 8, 23, 11, 64, 2];
      const full = await plain.forward([seq]);
      await plain.close();

      // prefill 4, one chunk of 3, then one token at a time
      let cache = lm.emptyCache(1);
      let pos = 0;
      for (const n of [4, 3, 1, 1, 1, 1, 1]) {
        const ids = seq.slice(pos, pos + n);
        const mask = new Array<number>(pos + n).fill(1);
        const r = await lm.step([ids], [mask], cache);
        cache = r.cache;
        pos += n;
        const d = maxAbsDiff(r.logits, rowOf(full, V, pos - 1));
        assert.ok(d <= TOL, `position ${pos - 1}: max abs diff ${d}`);
      }
      assert.equal(cache.pastLength, seq.length);
      assert.deepEqual(cache.tensors['past_key_values.0.key']?.dims, [
        1,
        lm.config.numKvHeads,
        seq.length,
        lm.config.headDim,
      ]);
      await lm.close();
    });
  }

  test('batched rows with left padding decode like each row alone', async () => {
    const lm = await CausalLM.fromFolder(join(FIXTURES, 'smollm2'), { engine });
    const V = lm.config.vocabSize;
    const a = [9, 8, 7, 6, 5, 4, 3, 2, 1];
    const b = [40, 41, 42, 43, 44, 45, 46, 47, 48];
    const promptA = 6;
    const promptB = 3;
    const pad = promptA - promptB;
    const fullA = await lm.forward([a]);
    const fullB = await lm.forward([b]);
    let cache = lm.emptyCache(2);
    const mask: number[][] = [new Array(promptA).fill(1), [...new Array(pad).fill(0), ...new Array(promptB).fill(1)]];
    let r = await lm.step([a.slice(0, promptA), [...new Array(pad).fill(0), ...b.slice(0, promptB)]], mask, cache);
    assert.ok(maxAbsDiff(rowOf(r.logits, V, 0), rowOf(fullA, V, promptA - 1)) <= TOL);
    assert.ok(maxAbsDiff(rowOf(r.logits, V, 1), rowOf(fullB, V, promptB - 1)) <= TOL);
    cache = r.cache;
    for (let k = 0; k < 3; k++) {
      mask[0]!.push(1);
      mask[1]!.push(1);
      r = await lm.step([[a[promptA + k]!], [b[promptB + k]!]], mask, cache);
      cache = r.cache;
      assert.ok(maxAbsDiff(rowOf(r.logits, V, 0), rowOf(fullA, V, promptA + k)) <= TOL, `row a step ${k}`);
      assert.ok(maxAbsDiff(rowOf(r.logits, V, 1), rowOf(fullB, V, promptB + k)) <= TOL, `row b step ${k}`);
    }
    await lm.close();
  });
});

test('the decoder graph uses the Optimum / transformers.js input and output names', async () => {
  const dir = join(FIXTURES, 'qwen3');
  const m = buildLlama(readHfConfig(join(dir, 'config.json')), loadWeights(dir), { kvCache: true, logits: 'last' });
  const s = await engine.load(toOnnx(m.graph, { fused: true }));
  const kv = (prefix: string): string[] => [0, 1].flatMap((i) => [`${prefix}.${i}.key`, `${prefix}.${i}.value`]);
  assert.deepEqual(
    new Set(s.inputNames),
    new Set(['input_ids', 'attention_mask', 'position_ids', ...kv('past_key_values')]),
  );
  assert.deepEqual(new Set(s.outputNames), new Set(['logits', ...kv('present')]));
  await s.release();
});
