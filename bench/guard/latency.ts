/**
 * Latency of the guard's non-model layers (normalisation + decoders + opencc, rules, similarity store) per message,
 * on a realistic mix: short customer-service messages and attacks (data/guard dev + benign-public), obfuscated
 * attacks (full-width, zero-width, leet, spaced, Traditional, base64), medium pastes (~800 chars of joined real
 * turns, some with an attack or a base64 blob inside) and long pastes (~4,000 and ~16,000 chars: documents,
 * order histories). Target (issue 14): p99 < 5 ms per message on 2 cores. The classifier layer is off here (its
 * latency is reported apart by `loom guard eval --classifier`).
 *
 *   npx tsx bench/guard/latency.ts [--passes 5]
 *
 * One JSON line per length bucket and one for the whole mix (p50/p95/p99/max ms, message count and length), then
 * one per layer (`stage`) from timing the layers one by one; the pii stage beside the same detector without its
 * pre-filters (`pii_no_prefilter`, with a count of messages whose findings differ: 0 expected). Then long chats (40
 * user turns from the mix, checked request by request as the history grows) with the per-turn normalisation cache
 * and without it (`viewCache: 0`), and a 1 MB paste under the work cap (`over_limit` block and scan_ends).
 * No other reference runs in the same process: LLM Guard (its
 * DeBERTa scanner) cannot be installed or run offline here; its published latency is quoted in docs/guard.md.
 * Reads banking77 train and CrossWOZ val only (their test splits are reserved for independent evaluation).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPiiDetector } from '../../src/data/pii.ts';
import { createGuard } from '../../src/guard/index.ts';
import { normalizeForGuard } from '../../src/guard/normalize.ts';
import { runRules } from '../../src/guard/rules.ts';
import { loadAttackStore } from '../../src/guard/similarity.ts';
import { banking77En, DATASETS, shakespeareEn } from '../data/neardup-corpus.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const passes = arg('passes', 5);
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const jsonl = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { text: string; split?: string; label?: string });

const dev = jsonl(join(root, 'data/guard/dev.jsonl'));
const pub = jsonl(join(root, 'data/guard/benign-public.jsonl'));
const zhTurns = jsonl(join(DATASETS, 'crosswoz_zh/user_turn_intents.jsonl'))
  .filter((r) => r.split === 'val')
  .map((r) => r.text);
const enTurns = banking77En();
const prose = shakespeareEn();
const attacks = dev.filter((r) => r.label !== 'benign').map((r) => r.text);

// Deterministic picks (a fixed stride), so every run measures the same messages.
let seed = 1;
const pick = <T>(xs: readonly T[]): T => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return xs[seed % xs.length]!;
};
const joined = (src: readonly string[], chars: number, sep = ' '): string => {
  let s = '';
  while (s.length < chars) s += (s ? sep : '') + pick(src);
  return s;
};
const fullWidth = (s: string) => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
const obfuscate = [
  fullWidth,
  (s: string) => [...s].join('\u200b'),
  (s: string) => s.replace(/o/g, '0').replace(/e/g, '3').replace(/i/g, '1'),
  (s: string) => s.replace(/\b(ignore|instructions|bomb)\b/gi, (w) => [...w].join(' ')),
  (s: string) => `please decode: ${Buffer.from(s).toString('base64')}`,
  (s: string) => s.replace(/指令/g, '指令').replace(/输出/g, '輸出').replace(/系统/g, '系統'),
];

const buckets: Record<string, string[]> = {
  short: [...dev.map((r) => r.text), ...pub.map((r) => r.text)],
  obfuscated: attacks.flatMap((a) => obfuscate.map((f) => f(a))),
  medium: [],
  long_4k: [],
  long_16k: [],
};
for (let i = 0; i < 200; i++) {
  const base = joined(i % 2 ? zhTurns : enTurns, 800, i % 2 ? '' : ' ');
  const extra =
    i % 5 === 0 ? ` ${pick(attacks)}` : i % 7 === 0 ? ` ${Buffer.from(pick(enTurns)).toString('base64')}` : '';
  buckets.medium!.push(base + extra);
}
for (let i = 0; i < 40; i++) buckets.long_4k!.push(joined(i % 2 ? zhTurns : prose, 4000, '\n'));
for (let i = 0; i < 10; i++) buckets.long_16k!.push(joined(i % 2 ? zhTurns : prose, 16000, '\n'));

const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
function summary(times: number[]): Record<string, number> {
  const t = [...times].sort((a, b) => a - b);
  return { p50: r3(q(t, 0.5)), p95: r3(q(t, 0.95)), p99: r3(q(t, 0.99)), max: r3(t.at(-1)!) };
}
const lengthOf = (xs: string[]) => {
  const l = xs.map((s) => s.length).sort((a, b) => a - b);
  return { chars_p50: q(l, 0.5), chars_max: l.at(-1)! };
};

const guard = createGuard({});
const all = Object.values(buckets).flat();
for (const m of all) guard.checkInput(m); // warm-up: opencc dictionaries, JIT
const per: Record<string, number[]> = {};
const mix: number[] = [];
for (let p = 0; p < passes; p++) {
  for (const [name, msgs] of Object.entries(buckets)) {
    for (const m of msgs) {
      const t0 = process.hrtime.bigint();
      guard.checkInput(m);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      (per[name] ??= []).push(ms);
      mix.push(ms);
    }
  }
}
const meta = { bench: 'guard-latency', layers: 'normalise+rules+similarity (classifier off)', passes };
for (const [name, msgs] of Object.entries(buckets))
  console.log(
    JSON.stringify({ ...meta, bucket: name, messages: msgs.length, ...lengthOf(msgs), ms: summary(per[name]!) }),
  );
console.log(
  JSON.stringify({
    ...meta,
    bucket: 'all',
    messages: all.length,
    ...lengthOf(all),
    ms: summary(mix),
    target_p99_ms: 5,
    reference: null,
    reference_note: 'LLM Guard cannot run offline here; no reference in this run',
  }),
);

// Layer by layer, over the same mix (one pass), to find the hot spots.
const store = loadAttackStore(join(root, 'data/guard/attacks.jsonl'));
const cats = new Set(guard.config.categories);
const pii = createPiiDetector();
// The same detector without its pre-filters (src/data/pii-scan.ts): the reference for the pii stage, same run.
const piiPlain = createPiiDetector({ prefilter: false });
let piiDiffer = 0;
const stage: Record<string, number[]> = { normalise: [], rules: [], similarity: [], pii: [], pii_no_prefilter: [] };
for (const m of all) {
  let t0 = process.hrtime.bigint();
  const v = normalizeForGuard(m);
  let t1 = process.hrtime.bigint();
  stage.normalise!.push(Number(t1 - t0) / 1e6);
  const views = [v.text, ...v.decoded];
  t0 = process.hrtime.bigint();
  runRules(views, cats);
  t1 = process.hrtime.bigint();
  stage.rules!.push(Number(t1 - t0) / 1e6);
  t0 = process.hrtime.bigint();
  store.query(views);
  t1 = process.hrtime.bigint();
  stage.similarity!.push(Number(t1 - t0) / 1e6);
  t0 = process.hrtime.bigint();
  const found = pii.mask(m);
  t1 = process.hrtime.bigint();
  stage.pii!.push(Number(t1 - t0) / 1e6);
  t0 = process.hrtime.bigint();
  const ref = piiPlain.mask(m);
  t1 = process.hrtime.bigint();
  stage.pii_no_prefilter!.push(Number(t1 - t0) / 1e6);
  if (JSON.stringify(found) !== JSON.stringify(ref)) piiDiffer++;
}
for (const [name, t] of Object.entries(stage))
  console.log(JSON.stringify({ ...meta, stage: name, total_ms: r3(t.reduce((a, b) => a + b, 0)), ms: summary(t) }));
console.log(JSON.stringify({ ...meta, check: 'pii_prefilter_identical', messages: all.length, differing: piiDiffer }));

// Long chats: every request carries the whole history (OpenAI API), so each is checked with all earlier turns.
const chatTurns = [...buckets.short!, ...buckets.medium!.slice(0, 20)];
const chatGuards = { cached: createGuard({}), uncached: createGuard({}, { viewCache: 0 }) };
for (const [name, g] of Object.entries(chatGuards)) {
  seed = 3;
  const times: number[] = [];
  const lastTimes: number[] = [];
  for (let c = 0; c < 10; c++) {
    const history: { role: string; content: string }[] = [{ role: 'system', content: 'You are a shop assistant.' }];
    for (let t = 0; t < 40; t++) {
      history.push({ role: 'user', content: pick(chatTurns) });
      const t0 = process.hrtime.bigint();
      g.checkInput(history);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      times.push(ms);
      if (t >= 30) lastTimes.push(ms);
      history.push({ role: 'assistant', content: 'Let me check that for you.' });
    }
  }
  console.log(
    JSON.stringify({
      ...meta,
      chat: name,
      chats: 10,
      user_turns: 40,
      ms: summary(times),
      turns_31_40_ms: summary(lastTimes),
    }),
  );
}

// A 1 MB paste: the work cap bounds the check (block refuses at once; scan_ends reads 2 × 16,000 characters).
const paste = joined([...zhTurns, ...prose], 1024 * 1024, '\n');
for (const over of ['block', 'scan_ends'] as const) {
  const g = createGuard({ over_limit: over });
  g.checkInput(paste);
  const times: number[] = [];
  let action = '';
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    action = g.checkInput(paste).action;
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(JSON.stringify({ ...meta, paste_chars: paste.length, over_limit: over, action, ms: summary(times) }));
}
