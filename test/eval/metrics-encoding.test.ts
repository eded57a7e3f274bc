/**
 * `loom eval metric` on real-world files: GBK and UTF-16 inputs are detected (the data stage's detector), invalid
 * bytes are refused with file:line instead of being scored as U+FFFD, and ROUGE refuses a pathological 50 MB line
 * within seconds instead of running a quadratic LCS for hours.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerEval } from '../../src/cli/eval.ts';
import { LoomError } from '../../src/core/errors.ts';
import { RougeScorer } from '../../src/eval/metrics/rouge.ts';
import { readJsonlRows, readSegments } from '../../src/eval/metrics/run.ts';

const dir = mkdtempSync(join(tmpdir(), 'loom-eval-enc-'));
const put = (name: string, bytes: Buffer | string): string => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};

// GBK code points written out from the GB 2312 table (not produced by any encoder under test):
// 你 C4E3, 好 BAC3, 中 D6D0, 文 CEC4.
const GBK = { 你: [0xc4, 0xe3], 好: [0xba, 0xc3], 中: [0xd6, 0xd0], 文: [0xce, 0xc4] } as const;
const gbk = (s: string): number[] =>
  [...s].flatMap((c) => (c in GBK ? [...GBK[c as keyof typeof GBK]] : [c.charCodeAt(0)]));
const LINES = ['你好 中文', '中文 你好', '你好 你好 中文'];
const gbkFile = put('hyp-gbk.txt', Buffer.from(LINES.flatMap((l) => [...gbk(l), 0x0a])));
const utf8File = put('ref-utf8.txt', `${LINES.join('\n')}\n`);
// UTF-16: Node's own encoder builds the bytes (independent of Loom's decoder); BOM FF FE (LE) / FE FF (BE).
const le = Buffer.from(`${LINES.join('\r\n')}\r\n`, 'utf16le');
const utf16leFile = put('hyp-utf16le.txt', Buffer.concat([Buffer.from([0xff, 0xfe]), le]));
const be = Buffer.from(le);
be.swap16();
const utf16beFile = put('hyp-utf16be.txt', Buffer.concat([Buffer.from([0xfe, 0xff]), be]));

async function run(args: string[]): Promise<{ out: string; err: string }> {
  const program = new Command().exitOverride();
  registerEval(program);
  const out: string[] = [];
  const err: string[] = [];
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    await program.parseAsync(['node', 'loom', 'eval', 'metric', ...args]);
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
  return { out: out.join(''), err: err.join('') };
}

test('GBK, UTF-16LE and UTF-16BE hypotheses decode to the same text as the UTF-8 reference', async () => {
  assert.deepEqual(readSegments(gbkFile, 'hypothesis'), LINES);
  assert.deepEqual(readSegments(utf16leFile, 'hypothesis'), LINES);
  assert.deepEqual(readSegments(utf16beFile, 'hypothesis'), LINES);
  for (const [f, label] of [
    [gbkFile, 'GB18030/GBK'],
    [utf16leFile, 'UTF-16LE'],
    [utf16beFile, 'UTF-16BE'],
  ] as const) {
    // Identical text scores 100: a misdecoded file would score near 0 (mojibake or U+FFFD shares no n-grams).
    const r = await run(['bleu', '--hyp', f, '--ref', utf8File, '--tokenize', 'zh', '--json']);
    assert.ok(Math.abs(JSON.parse(r.out.trim()).score - 100) < 1e-9, f);
    assert.match(r.err, new RegExp(`read as ${label.replace('/', '\\/')}`));
  }
});

test('an invalid byte on line 3 is refused with file:line, in UTF-8 and in GBK files', async () => {
  const badUtf8 = put(
    'bad-utf8.txt',
    Buffer.concat([Buffer.from('你好 中文\n中文 你好\nok '), Buffer.from([0xff]), Buffer.from(' tail\n')]),
  );
  const badGbk = put('bad-gbk.txt', Buffer.from([...gbk('你好 中文\n中文 你好\n你'), 0xff, 0x0a]));
  for (const f of [badUtf8, badGbk]) {
    await assert.rejects(
      run(['chrf', '--hyp', f, '--ref', utf8File]),
      (e: unknown) =>
        e instanceof LoomError &&
        e.code === 'INPUT_ENCODING' &&
        e.file === f &&
        e.line === 3 &&
        e.format().includes(`${f}:3`) &&
        !e.message.includes('\uFFFD'),
    );
  }
  // The byte and its column are named for UTF-8 ("ok " is 3 bytes, so the bad byte is column 4).
  assert.throws(() => readSegments(badUtf8, 'hypothesis'), /line 3 is not valid UTF-8: byte 0xff at byte column 4/);
  // Eval datasets (JSONL) go through the same reader.
  const jsonl = put('items.jsonl', Buffer.from([...gbk('{"q":"你好"}\n{"q":"中文"}\n')]));
  assert.deepEqual(
    readJsonlRows(jsonl, 'dataset').map((r) => r.value.q),
    ['你好', '中文'],
  );
});

test('a 50 MB ROUGE line is refused within seconds with the segment named', async () => {
  const huge = 'the quick brown fox jumps over the lazy dog '.repeat(1_200_000); // 52.8 MB
  const hypPath = put('huge-hyp.txt', `short summary\n${huge}\nanother one\n`);
  const refPath = put('huge-ref.txt', 'short summary\nthe fox\nanother one\n');
  const t0 = performance.now();
  await assert.rejects(
    run(['rouge', '--hyp', hypPath, '--ref', refPath]),
    (e: unknown) =>
      e instanceof LoomError &&
      e.code === 'METRIC_INPUT' &&
      e.line === 2 &&
      /segment 2 \(line 2\): the hypothesis has 52,800,000 characters, over ROUGE's limit/.test(e.message),
  );
  const s = (performance.now() - t0) / 1000;
  assert.ok(s < 10, `refused in ${s.toFixed(2)} s`);
});

test('ROUGE-L and ROUGE-Lsum refuse an LCS over the cell cap; ROUGE-1/2 still score the same input', () => {
  const a = Array.from({ length: 6000 }, (_, i) => `w${i % 97}`).join(' ');
  const b = Array.from({ length: 6000 }, (_, i) => `w${i % 89}`).join(' ');
  const t0 = performance.now();
  assert.throws(
    () => new RougeScorer(['rougeL']).score(a, b),
    /rougeL needs an LCS over 6,000 × 6,000 tokens \(3\.6e\+7 cells\)/,
  );
  assert.throws(() => new RougeScorer(['rougeLsum']).score(a, b), /rougeLsum needs an LCS over 6,000 × 6,000/);
  assert.ok(performance.now() - t0 < 2000, 'refused before running the LCS');
  const r = new RougeScorer(['rouge1', 'rouge2']).score(a, b);
  assert.ok(r.rouge1!.fmeasure > 0.9);
  // The cap is a parameter: a small one refuses a 20 × 20 LCS, the default scores it (0.5 = 10 of 20 in order).
  const x = Array.from({ length: 20 }, (_, i) => `t${i}`).join(' ');
  const y = Array.from({ length: 20 }, (_, i) => (i % 2 ? `t${i}` : `u${i}`)).join(' ');
  assert.throws(() => new RougeScorer(['rougeL'], { maxLcsCells: 100 }).score(x, y), /400 cells|4\.0e\+2 cells/);
  assert.equal(new RougeScorer(['rougeL']).score(x, y).rougeL!.fmeasure, 0.5);
});
