// Continuous batching's decode state (generate/batch.ts): sequences of different lengths that join and leave a
// shared, left-padded KV cache between steps must get, at every step, the logits each sequence gets decoding alone
// at batch 1 (CausalLM.decode, itself tested against the primitive graph's full forward in decode-resident.test.ts),
// within 1e-4 in fp32, including GQA (llama3 fixture: 2 query heads, 1 kv head).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../src/engine/index.ts';
import { DecodeBatch } from '../../src/generate/batch.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { maxAbsDiff } from '../models/compare.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');
const TOL = 1e-4;

let engine: Engine;
before(async () => {
  engine = await Engine.create({ threads: 2 });
});
after(async () => {
  await engine.close();
});

/** Batch-1 logits after each prefix of seq from prompt length on: ref[k] follows seq.slice(0, promptLen + k). */
async function alone(lm: CausalLM, seq: number[], promptLen: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  let r = await lm.decode([seq.slice(0, promptLen)], [new Array<number>(promptLen).fill(1)], lm.emptyCache(1), {
    logits: true,
  });
  out.push(r.logits!.slice());
  for (let n = promptLen; n < seq.length; n++) {
    r = await lm.decode([[seq[n]!]], [new Array<number>(n + 1).fill(1)], r.cache, { logits: true });
    out.push(r.logits!.slice());
  }
  await lm.releaseCache(r.cache);
  return out;
}

describe('batched decode (DecodeBatch)', () => {
  for (const variant of ['llama3', 'qwen2', 'smollm2']) {
    test(`${variant}: rows joining and leaving mid-batch get their batch-1 logits at every step`, async () => {
      const lm = await CausalLM.fromFolder(join(FIXTURES, variant), { engine, fused: true });
      const V = lm.config.vocabSize;
      const tok = (i: number, s: number) => (i * 37 + s * 11 + 5) % V;
      // prompt lengths 9, 3, 5, 1; 8 tokens each after the prompt (fed tokens are fixed, not sampled).
      const prompts = [9, 3, 5, 1];
      const seqs = prompts.map((p, s) => Array.from({ length: p + 8 }, (_, i) => tok(i, s)));
      const refs = await Promise.all(seqs.map((q, s) => alone(lm, q, prompts[s]!)));

      const batch = new DecodeBatch(lm, { padId: 0 });
      const fed = new Map<number, { s: number; k: number }>(); // row id -> sequence, tokens fed after the prompt
      const check = (out: { ids: number[]; logits?: Float32Array }, what: string) => {
        out.ids.forEach((id, row) => {
          const f = fed.get(id)!;
          const got = out.logits!.subarray(row * V, (row + 1) * V);
          const d = maxAbsDiff(got, refs[f.s]![f.k]!);
          assert.ok(d <= TOL, `${what}: sequence ${f.s} after ${f.k} fed tokens: max abs diff ${d}`);
        });
      };
      const enter = async (ss: number[]) => {
        const out = await batch.join(
          ss.map((s) => seqs[s]!.slice(0, prompts[s])),
          { logits: true },
        );
        for (const [i, id] of out.ids.entries()) fed.set(id, { s: ss[i]!, k: 0 });
        check(out, `join ${ss}`);
        return out.ids;
      };
      const step = async (what: string) => {
        const out = await batch.step(
          (id) => {
            const f = fed.get(id)!;
            return seqs[f.s]![prompts[f.s]! + f.k]!;
          },
          { logits: true },
        );
        for (const id of out.ids) fed.get(id)!.k++;
        check(out, what);
        return out;
      };

      const [a, b] = await enter([0, 1]); // two lengths in one prefill
      await step('step 1');
      await step('step 2');
      const [c] = await enter([2]); // joins mid-batch
      assert.equal(batch.size, 3);
      await step('step 3 (c joined)');
      batch.leave(a!); // the longest leaves: its padding columns are trimmed
      const after = await step('step 4 (a left)');
      assert.deepEqual(after.ids, [b, c]);
      assert.equal(batch.width, Math.max(batch.length(b!)!, batch.length(c!)!));
      const [d] = await enter([3]);
      batch.leave(b!); // a leave and a join applied in one copy
      const s5 = await step('step 5 (d joined, b left)');
      assert.deepEqual(s5.ids, [c, d]);
      for (let i = 6; i <= 8; i++) await step(`step ${i}`);
      assert.ok((await engine.residentCount()) > 0);
      await batch.release();
      assert.equal(await engine.residentCount(), 0);
      await lm.close();
    });
  }

  test('every row leaving empties the batch; the next join starts a fresh cache', async () => {
    const lm = await CausalLM.fromFolder(join(FIXTURES, 'llama3'), { engine, fused: true });
    const batch = new DecodeBatch(lm, { padId: 0 });
    const { ids } = await batch.join([[5, 6, 7]]);
    await batch.step(() => 8);
    batch.leave(ids[0]!);
    const empty = await batch.step(() => 0);
    assert.deepEqual(empty.ids, []);
    assert.equal(batch.size, 0);
    assert.equal(await engine.residentCount(), 0);
    const again = await batch.join([[1, 2]]);
    const s = await batch.step(() => 3);
    assert.deepEqual(s.ids, again.ids);
    assert.equal(batch.width, 3);
    await batch.release();
    assert.equal(await engine.residentCount(), 0);
    await lm.close();
  });
});
