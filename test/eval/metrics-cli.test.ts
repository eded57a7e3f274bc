/**
 * `loom eval metric`: sacrebleu's README example through the CLI, per-segment output, JSON lines, and the input
 * and option errors (LoomError METRIC_INPUT / METRIC_OPTION naming file and counts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerEval } from '../../src/cli/eval.ts';

const dir = mkdtempSync(join(tmpdir(), 'loom-eval-cli-'));
const file = (name: string, lines: string[] | string) => {
  const p = join(dir, name);
  writeFileSync(p, typeof lines === 'string' ? lines : `${lines.join('\n')}\n`);
  return p;
};
const hyp = file('hyp.txt', ['The dog bit the man.', "It wasn't surprising.", 'The man had just bitten him.']);
const ref1 = file('ref1.txt', ['The dog bit the man.', 'It was not unexpected.', 'The man bit him first.']);
const ref2 = file('ref2.txt', ['The dog had bit the man.', 'No one was surprised.', 'The man had bitten the dog.']);
const short = file('short.txt', ['only one line']);
const empty = file('empty.txt', '');

async function run(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerEval(program);
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    chunks.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'loom', 'eval', 'metric', ...args]);
  } finally {
    process.stdout.write = orig;
  }
  return chunks.join('');
}

test('bleu with two references prints the sacrebleu line and signature', async () => {
  const out = await run(['bleu', '--hyp', hyp, '--ref', ref1, '--ref', ref2]);
  assert.equal(
    out,
    'BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)\n' +
      'nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0\n',
  );
});

test('chrf segments and JSON lines', async () => {
  const out = await run(['chrf', '--hyp', hyp, '--ref', ref1, '--ref', ref2, '--segments', '--json']);
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 4);
  assert.equal(lines[0].segment, 1);
  assert.equal(lines[3].formatted, 'chrF2 = 59.73');
});

test('rouge, em, f1 and prf run', async () => {
  assert.match(await run(['rouge', '--hyp', hyp, '--ref', ref1, '--stemmer']), /^rouge1 = \d+\.\d\d /);
  assert.equal(await run(['em', '--hyp', hyp, '--ref', ref1]), 'EM = 0.3333\n');
  assert.match(await run(['f1', '--hyp', hyp, '--ref', ref1, '--confidence', '50']), /^F1 = 0\.\d{4} \(μ = /);
  assert.match(await run(['prf', '--hyp', hyp, '--ref', ref1]), /^accuracy = 0\.3333 /);
});

const code = (c: string) => (e: Error & { code?: string }) => e.code === c;

test('mismatched line counts name the file and both counts', async () => {
  await assert.rejects(run(['bleu', '--hyp', hyp, '--ref', short]), (e: Error & { code?: string; file?: string }) => {
    assert.equal(e.code, 'METRIC_INPUT');
    assert.equal(e.file, short);
    assert.match(e.message, /has 1 lines, hypothesis .* has 3/);
    return true;
  });
});

test('empty files, unknown and misapplied options, bad values', async () => {
  await assert.rejects(run(['bleu', '--hyp', empty, '--ref', ref1]), code('METRIC_INPUT'));
  await assert.rejects(run(['bleu', '--hyp', hyp, '--ref', ref1, '--frobnicate']), code('METRIC_OPTION'));
  await assert.rejects(run(['chrf', '--hyp', hyp, '--ref', ref1, '--tokenize', 'zh']), code('METRIC_OPTION'));
  await assert.rejects(run(['bleu', '--hyp', hyp, '--ref', ref1, '--tokenize', 'xx']), code('METRIC_OPTION'));
  await assert.rejects(run(['bleu', '--hyp', hyp, '--ref', ref1, '--smooth-method', 'magic']), code('METRIC_OPTION'));
  await assert.rejects(run(['chrf', '--hyp', hyp, '--ref', ref1, '--beta', 'x']), code('METRIC_OPTION'));
  await assert.rejects(run(['meteor', '--hyp', hyp, '--ref', ref1]), code('METRIC_OPTION'));
  await assert.rejects(run(['rouge', '--hyp', hyp, '--ref', ref1, '--rouge-types', 'rouge0']), code('METRIC_OPTION'));
  await assert.rejects(run(['bleu', '--hyp', hyp]), code('METRIC_INPUT'));
});

test('paired test against a baseline file', async () => {
  const out = await run([
    'bleu',
    '--hyp',
    ref2,
    '--ref',
    ref1,
    '--baseline',
    hyp,
    '--paired-test',
    'ar',
    '--paired-samples',
    '200',
  ]);
  assert.match(out, /paired approximate randomization \(200\): .* p = 0\.\d{4}/);
});
