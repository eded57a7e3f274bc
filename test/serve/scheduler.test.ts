// Continuous batching (serve/scheduler.ts): requests that share one batched decode step per model must get the
// tokens they get generating alone (generateIds, batch 1), whether they start together, join while others run, or
// leave early; a cancelled request leaves the batch at the next step and frees its cache rows; the steps run
// prove the rows really were decoded together.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../src/engine/index.ts';
import { CausalLM } from '../../src/generate/causal-lm.ts';
import { generateIds } from '../../src/generate/generate.ts';
import { BatchScheduler } from '../../src/serve/scheduler.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');

let engine: Engine;
let lm: CausalLM;
before(async () => {
  engine = await Engine.create({ threads: 2 });
  lm = await CausalLM.fromFolder(join(FIXTURES, 'llama3'), { engine }); // GQA: 2 query heads, 1 kv head
});
after(async () => {
  await lm.close();
  await engine.close();
});

const V = 160;
const prompt = (s: number) => Array.from({ length: 2 + ((s * 5) % 9) }, (_, i) => (i * 31 + s * 17 + 3) % V);

describe('BatchScheduler', () => {
  test('8 concurrent greedy and seeded-sampling requests equal each generated alone; one step serves them all', async () => {
    const settings = (s: number) =>
      s % 2 === 0 ? { temperature: 0 } : { temperature: 0.9, topP: 0.9, seed: 100 + s, repetitionPenalty: 1.1 };
    const want = [];
    for (let s = 0; s < 8; s++) {
      const [r] = await generateIds(lm, [prompt(s)], { ...settings(s), maxNewTokens: 12, eosIds: [] });
      want.push(r!.ids);
    }
    const sched = new BatchScheduler(lm, { maxBatch: 8 });
    const got = await Promise.all(
      Array.from({ length: 8 }, (_, s) => sched.submit(prompt(s), { ...settings(s), maxNewTokens: 12, eosIds: [] })),
    );
    assert.deepEqual(
      got.map((r) => r.ids),
      want,
    );
    assert.ok(got.every((r) => r.finishReason === 'length' && r.ids.length === 12));
    // The first token comes from the prefill, the other 11 from 11 shared decode steps (8 x 11 if sequential).
    assert.equal(sched.steps, 11);
    await sched.close();
    assert.equal(await engine.residentCount(), 0);
  });

  test('requests join mid-batch and leave at different lengths; more than maxBatch wait for a slot', async () => {
    const lens = [20, 5, 9, 14, 3];
    const want = [];
    for (let s = 0; s < lens.length; s++) {
      const [r] = await generateIds(lm, [prompt(s)], { temperature: 0, maxNewTokens: lens[s], eosIds: [] });
      want.push(r!.ids);
    }
    const sched = new BatchScheduler(lm, { maxBatch: 3 });
    const peak = { running: 0 };
    const first = sched.submit(prompt(0), {
      temperature: 0,
      maxNewTokens: lens[0],
      eosIds: [],
      onToken: () => {
        peak.running = Math.max(peak.running, sched.running);
        return undefined;
      },
    });
    const rest: Promise<{ ids: number[] }>[] = [];
    // Newcomers arrive while the first request is generating: after its 4th token.
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (sched.steps >= 3) {
          clearInterval(t);
          resolve();
        }
      }, 1);
    });
    for (let s = 1; s < lens.length; s++) {
      rest.push(sched.submit(prompt(s), { temperature: 0, maxNewTokens: lens[s], eosIds: [] }));
    }
    const got = [await first, ...(await Promise.all(rest))];
    assert.deepEqual(
      got.map((r) => r.ids),
      want,
    );
    assert.equal(peak.running, 3, 'never more rows than maxBatch');
    await sched.close();
    assert.equal(await engine.residentCount(), 0);
  });

  test('a cancelled request leaves the batch at the next step; the others go on unchanged', async () => {
    const [want] = await generateIds(lm, [prompt(1)], { temperature: 0, maxNewTokens: 16, eosIds: [] });
    const sched = new BatchScheduler(lm, { maxBatch: 4 });
    const abort = new AbortController();
    let seen = 0;
    const cancelled = sched.submit(prompt(0), {
      temperature: 0,
      maxNewTokens: 200,
      eosIds: [],
      signal: abort.signal,
      onToken: () => {
        if (++seen === 4) abort.abort();
        return undefined;
      },
    });
    const other = sched.submit(prompt(1), { temperature: 0, maxNewTokens: 16, eosIds: [] });
    const c = await cancelled;
    assert.equal(c.finishReason, 'aborted');
    assert.ok(c.ids.length <= 5, `stopped right after the abort (${c.ids.length} tokens)`);
    assert.equal(sched.running, 1, 'its slot is free while the other request still runs');
    assert.deepEqual((await other).ids, want!.ids);
    // A request cancelled before it starts never joins.
    const gone = new AbortController();
    gone.abort();
    const never = await sched.submit(prompt(2), { maxNewTokens: 5, signal: gone.signal });
    assert.equal(never.finishReason, 'aborted');
    assert.deepEqual(never.ids, []);
    await sched.close();
    assert.equal(await engine.residentCount(), 0);
  });
});

test('a request whose own callback throws fails alone; the batch goes on', async () => {
  const [want] = await generateIds(lm, [prompt(4)], { temperature: 0, maxNewTokens: 10, eosIds: [] });
  const sched = new BatchScheduler(lm, { maxBatch: 4 });
  let n = 0;
  const bad = sched.submit(prompt(3), {
    temperature: 0,
    maxNewTokens: 50,
    eosIds: [],
    onToken: () => {
      if (++n === 3) throw new Error('client write failed');
      return undefined;
    },
  });
  const good = sched.submit(prompt(4), { temperature: 0, maxNewTokens: 10, eosIds: [] });
  await assert.rejects(bad, /client write failed/);
  assert.deepEqual((await good).ids, want!.ids);
  await sched.close();
  assert.equal(await engine.residentCount(), 0);
});
