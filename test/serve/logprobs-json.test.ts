// logprobs / top_logprobs and response_format json_object on the local backend, through the official openai SDK.
// Logprob values are checked against an independent computation: log-softmax of the logits of the engine's
// full-sequence graph (lm.forward, no KV cache) on prompt + the tokens returned. The JSON acceptor is checked
// against JSON.parse on generated and mutated documents.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { type RunningServer, startServe } from '../../src/cli/serve.ts';
import { Rng } from '../../src/core/rng.ts';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { createModelFolder } from '../../src/models/folder.ts';
import { JsonAcceptor } from '../../src/serve/json-mode.ts';

let work: string;
let dir: string;
let server: RunningServer;
let client: OpenAI;
let ref: LocalChatModel;
const MESSAGES = [{ role: 'user' as const, content: 'hello there' }];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'loom-serve-lp-'));
  dir = join(work, 'tiny');
  createModelFolder(dir, { preset: 'tiny', seed: 3, overrides: { initializer_range: 0.2 } });
  server = await startServe(dir, {
    registry: join(work, 'registry.db'),
    port: 0,
    logLevel: 'silent',
    requestLog: false,
    overrides: ['models.0.threads=1'],
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  ref = await LocalChatModel.fromFolder(dir, { threads: 1 });
});

after(async () => {
  await server?.close();
  await ref?.close();
  rmSync(work, { recursive: true, force: true });
});

interface Entry {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: { token: string; logprob: number; bytes: number[] | null }[];
}

/** For each returned token: find its id by bytes, check logprob and top-k against log-softmax of lm.forward. */
async function checkAgainstForward(prompt: number[], entries: readonly Entry[], top: number): Promise<number> {
  const V = ref.lm.config.vocabSize;
  const byBytes = new Map<string, number>();
  for (let id = 0; id < V; id++) {
    if (!ref.tokenizer.isSpecial(id)) byBytes.set([...ref.tokenizer.tokenBytes(id)].join(','), id);
  }
  const ids = [...prompt];
  let worst = 0;
  for (const e of entries) {
    const id = byBytes.get((e.bytes ?? []).join(','));
    assert.ok(id !== undefined, `no token with bytes ${e.bytes}`);
    const logits = await ref.lm.forward([ids]);
    const row = logits.subarray((ids.length - 1) * V, ids.length * V);
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    const lsm = (i: number) => row[i]! - m - Math.log(s);
    worst = Math.max(worst, Math.abs(e.logprob - lsm(id)));
    const order = [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b).slice(0, top);
    assert.deepEqual(
      e.top_logprobs.map((t) => t.bytes?.join(',')),
      order.map((i) => [...ref.tokenizer.tokenBytes(i)].join(',')),
    );
    e.top_logprobs.forEach((t, k) => {
      worst = Math.max(worst, Math.abs(t.logprob - lsm(order[k]!)));
    });
    ids.push(id);
  }
  return worst;
}

test('chat logprobs + top_logprobs (greedy): OpenAI shape, values = log-softmax of the full-sequence forward', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny',
    messages: MESSAGES,
    max_tokens: 6,
    temperature: 0,
    logprobs: true,
    top_logprobs: 3,
  });
  const content = r.choices[0]!.logprobs?.content as Entry[];
  assert.equal(content.length, 6);
  assert.equal(r.choices[0]!.logprobs?.refusal, null);
  assert.equal(content.map((e) => e.token).join(''), r.choices[0]!.message.content);
  for (const e of content) {
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.token, e.top_logprobs[0]!.token); // greedy: the chosen token is the most likely one
    assert.ok(e.logprob <= 0);
  }
  const worst = await checkAgainstForward(await ref.encodePrompt(MESSAGES), content, 3);
  assert.ok(worst < 1e-4, `max |Δ logprob| = ${worst}`);

  // Streaming: the chunks' logprobs add up to the same list.
  const stream = await client.chat.completions.create({
    model: 'tiny',
    messages: MESSAGES,
    max_tokens: 6,
    temperature: 0,
    logprobs: true,
    top_logprobs: 3,
    stream: true,
  });
  const streamed: Entry[] = [];
  for await (const c of stream) streamed.push(...((c.choices[0]?.logprobs?.content ?? []) as Entry[]));
  assert.deepEqual(streamed, content);
});

// Legacy token names: the text, or `bytes:\xNN…` for part of a UTF-8 character (OpenAI's convention).
const bytesOf = (t: string) =>
  t.startsWith('bytes:')
    ? t
        .slice(6)
        .split('\\x')
        .filter(Boolean)
        .map((h) => Number.parseInt(h, 16))
    : [...new TextEncoder().encode(t)];
const entriesText = (tokens: string[]) => new TextDecoder().decode(Uint8Array.from(tokens.flatMap(bytesOf)));

test('completions logprobs=2 while sampling (temperature 1, seed): raw-model logprobs of the sampled tokens', async () => {
  const prompt = 'the cat';
  const r = await client.completions.create({
    model: 'tiny',
    prompt,
    max_tokens: 5,
    temperature: 1,
    seed: 11,
    logprobs: 2,
  });
  const lp = r.choices[0]!.logprobs!;
  assert.equal(lp.tokens?.length, 5);
  assert.equal(entriesText(lp.tokens!), r.choices[0]!.text);
  assert.deepEqual(lp.text_offset?.[0], 0);
  const entries: Entry[] = lp.tokens!.map((t, i) => ({
    token: t,
    logprob: lp.token_logprobs![i]!,
    bytes: bytesOf(t),
    // A JSON object keeps integer-like keys ("3") first whatever the order written: sort by logprob again.
    top_logprobs: Object.entries(lp.top_logprobs![i]!)
      .sort((a, b) => b[1] - a[1])
      .map(([token, logprob]) => ({
        token,
        logprob,
        bytes: bytesOf(token),
      })),
  }));
  const ids = await ref.tokenizer.encode(prompt, { addSpecialTokens: true });
  const worst = await checkAgainstForward(ids, entries, 2);
  assert.ok(worst < 1e-4, `max |Δ logprob| = ${worst}`);
});

test('json_object: every sampled reply parses as a JSON object, also when max_tokens forces it closed', async () => {
  for (const [seed, max] of [
    [1, 40],
    [2, 40],
    [3, 12],
    [4, 6],
    [5, 3],
  ] as const) {
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'reply in JSON' }],
      max_tokens: max,
      temperature: 1,
      seed,
      response_format: { type: 'json_object' },
    });
    const text = r.choices[0]!.message.content ?? '';
    const v = JSON.parse(text) as unknown;
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `seed ${seed}: not an object: ${text}`);
    assert.ok((r.usage?.completion_tokens ?? 0) <= max);
  }
  // json_schema is gguf-only: a clear 400 here.
  await assert.rejects(
    client.chat.completions.create({
      model: 'tiny',
      messages: MESSAGES,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
    }),
    (e: InstanceType<typeof OpenAI.APIError>) =>
      e.status === 400 && e.code === 'unsupported_parameter' && /json_schema/.test(e.message),
  );
});

/** A random JSON value (strings with escapes and CJK, numbers of every form, nesting). */
function randomValue(rng: Rng, depth: number): unknown {
  const k = Math.floor(rng.next() * (depth > 3 ? 4 : 7));
  const pool = ['a', 'b', '"', '\\', '\n', '中', '文', 'é', ' ', '\u0001', '/', 'x'];
  if (k === 0) return rng.next() < 0.5;
  if (k === 1) return null;
  if (k === 2) return [0, -0.5, 12, 1e21, -3.25e-7, 7][Math.floor(rng.next() * 6)];
  if (k === 3)
    return Array.from({ length: Math.floor(rng.next() * 6) }, () => pool[Math.floor(rng.next() * pool.length)]).join(
      '',
    );
  if (k === 4) return Array.from({ length: Math.floor(rng.next() * 4) }, () => randomValue(rng, depth + 1));
  return randomObject(rng, depth + 1);
}
function randomObject(rng: Rng, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rng.next() * 4); i > 0; i--)
    o[`k${i}${rng.next() < 0.3 ? '"' : ''}`] = randomValue(rng, depth);
  return o;
}

test('JsonAcceptor agrees with JSON.parse on 400 generated documents and 2000 one-character mutations', () => {
  const rng = new Rng(9);
  const enc = new TextEncoder();
  const accepts = (s: string) => {
    const a = new JsonAcceptor();
    return a.feed(enc.encode(s)) && a.done;
  };
  // The reference: JSON.parse, top level an object, no blank before it or after its closing brace (the reply
  // starts with '{' and only EOS may follow the '}').
  const valid = (s: string) => {
    try {
      const v = JSON.parse(s) as unknown;
      return v !== null && typeof v === 'object' && !Array.isArray(v) && !/^\s|\s$/.test(s);
    } catch {
      return false;
    }
  };
  const chars = ['{', '}', '[', ']', ':', ',', '"', '\\', ' ', '0', '1', '-', '.', 'e', '+', 't', 'n', 'u', 'x', '中'];
  let mutants = 0;
  for (let i = 0; i < 400; i++) {
    const doc = JSON.stringify(randomObject(rng, 0), null, i % 3 === 0 ? 2 : undefined);
    assert.ok(accepts(doc), `rejected valid ${doc}`);
    // Every prefix of a valid document is a valid prefix.
    const a = new JsonAcceptor();
    for (const b of enc.encode(doc)) assert.ok(a.feed(Uint8Array.of(b)), `prefix rejected in ${doc}`);
    for (let j = 0; j < 5; j++) {
      const at = Math.floor(rng.next() * doc.length);
      const c = chars[Math.floor(rng.next() * chars.length)]!;
      const m = rng.next() < 0.5 ? doc.slice(0, at) + c + doc.slice(at + 1) : doc.slice(0, at) + c + doc.slice(at);
      assert.equal(accepts(m), valid(m), `disagree on ${JSON.stringify(m)}`);
      mutants++;
    }
  }
  assert.equal(mutants, 2000);
  assert.ok(!accepts('[1]') && !accepts('"x"') && !accepts('{"a":01}') && !accepts('{"a":1,}'));
});
