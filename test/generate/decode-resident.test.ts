// Decoding with the KV cache kept in the runtime's thread (CausalLM.decode, what generateIds runs) must give the
// logits of the primitive (unfused) graph's full forward pass at every step, its in-graph greedy id must be the
// argmax of those logits, and generation must free every resident value it made.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../src/engine/index.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { generateIds } from '../../src/generate/generate.ts';
import { maxAbsDiff } from '../models/compare.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');
const TOL = 1e-4;

function argmaxRow(x: Float32Array, V: number, row: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (x[row * V + i]! > x[row * V + best]!) best = i;
  return best;
}

let engine: Engine;
before(async () => {
  engine = await Engine.create({ threads: 2 });
});
after(async () => {
  await engine.close();
});

describe('resident KV-cache decode', () => {
  for (const variant of ['llama3', 'qwen2', 'smollm2']) {
    test(`${variant}: decode (fused, resident cache) equals the primitive graph's full forward`, async () => {
      const lm = await CausalLM.fromFolder(join(FIXTURES, variant), { engine, fused: true });
      const plain = await CausalLM.fromFolder(join(FIXTURES, variant), { engine, fused: false });
      const V = lm.config.vocabSize;
      const seq = [5, 17, 99, 3, 42, 7, 61, 8, 23, 11];
      const full = await plain.forward([seq]);
      await plain.close();
      let cache = lm.emptyCache(1);
      let pos = 0;
      for (const n of [4, 2, 1, 1, 1, 1]) {
        const mask = new Array<number>(pos + n).fill(1);
        const r = await lm.decode([seq.slice(pos, pos + n)], [mask], cache, { logits: true });
        cache = r.cache;
        pos += n;
        assert.ok(r.logits);
        const d = maxAbsDiff(r.logits, full.subarray((pos - 1) * V, pos * V));
        assert.ok(d <= TOL, `position ${pos - 1}: max abs diff ${d}`);
        assert.equal(r.next[0], argmaxRow(full, V, pos - 1), `greedy id at position ${pos - 1}`);
      }
      assert.equal(cache.pastLength, seq.length);
      assert.deepEqual(cache.resident?.['past_key_values.0.value']?.dims, [
        1,
        lm.config.numKvHeads,
        seq.length,
        lm.config.headDim,
      ]);
      assert.ok((await engine.residentCount()) > 0);
      await lm.releaseCache(cache);
      assert.equal(await engine.residentCount(), 0);
      await lm.close();
    });
  }

  test('greedy generation (in-graph argmax) equals re-running the primitive full forward per token', async () => {
    const lm = await CausalLM.fromFolder(join(FIXTURES, 'smollm2'), { engine, fused: true });
    const plain = await CausalLM.fromFolder(join(FIXTURES, 'smollm2'), { engine, fused: false });
    const V = lm.config.vocabSize;
    const prompts = [
      [3, 14, 15, 92, 65],
      [35, 89],
    ];
    const got = await generateIds(lm, prompts, { maxNewTokens: 8, temperature: 0, eosIds: [] });
    for (let b = 0; b < prompts.length; b++) {
      const seq = [...prompts[b]!];
      const want: number[] = [];
      for (let k = 0; k < 8; k++) {
        const logits = await plain.forward([seq]);
        const id = argmaxRow(logits, V, seq.length - 1);
        want.push(id);
        seq.push(id);
      }
      assert.deepEqual(got[b]!.ids, want, `row ${b}`);
    }
    // Sampling with a penalty fetches logits and still frees its cache.
    await generateIds(lm, prompts, { maxNewTokens: 4, temperature: 0, repetitionPenalty: 1.3, eosIds: [] });
    assert.equal(await engine.residentCount(), 0, 'generation left resident values behind');
    await plain.close();
    await lm.close();
  });
});
