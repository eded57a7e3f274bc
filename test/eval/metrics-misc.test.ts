/**
 * EM / token F1 / checks / JSON schema, classification scores, log-likelihood scoring and resampling statistics.
 * Expected values are worked out by hand from the definitions (SQuAD's evaluate script, sklearn's
 * precision_recall_fscore_support, numpy.percentile's linear interpolation).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../../src/core/rng.ts';
import { Bleu } from '../../src/eval/metrics/bleu.ts';
import { classificationReport, extractLabel, NO_LABEL } from '../../src/eval/metrics/classify.ts';
import { loadMultipleChoice, perplexity, scoreChoices } from '../../src/eval/metrics/likelihood.ts';
import { RougeScorer, splitSentences } from '../../src/eval/metrics/rouge.ts';
import { jiebaTokenize } from '../../src/eval/metrics/rouge-tokenizers.ts';
import {
  bootstrapCorpus,
  bootstrapMean,
  estimateCi,
  pairedApproxRandomization,
  pairedBootstrap,
  percentileSorted,
} from '../../src/eval/metrics/stats.ts';
import {
  checkJsonSchema,
  cjkAwareTokens,
  contains,
  exactMatch,
  matchesRegex,
  normalizeAnswer,
  tokenF1,
} from '../../src/eval/metrics/text.ts';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} vs ${b}`);

test('SQuAD normalisation, exact match and token F1', () => {
  assert.equal(normalizeAnswer('The  Quick, brown fox!'), 'quick brown fox');
  assert.equal(normalizeAnswer('北京，中国。'), '北京中国');
  assert.equal(normalizeAnswer('An Apple', { lowercase: false }), 'Apple');
  assert.equal(exactMatch('the Cat.', ['a dog', 'cat']), 1);
  assert.equal(exactMatch('the Cat.', 'cat', { stripPunctuation: false }), 0);
  close(tokenF1('the cat sat', 'a cat sat down'), 0.8);
  close(tokenF1('北京大学', '北京'), 2 / 3);
  assert.deepEqual(cjkAwareTokens('我爱NLP和AI 2024'), ['我', '爱', 'NLP', '和', 'AI', '2024']);
  assert.equal(tokenF1('', ''), 1);
  assert.equal(tokenF1('x', ''), 0);
  close(tokenF1('red apple', ['green pear', 'apple']), 2 / 3);
});

test('contains, regex and JSON schema checks', () => {
  assert.ok(contains('Your ORDER has shipped', 'order', { ignoreCase: true }));
  assert.ok(!contains('Your ORDER has shipped', 'order'));
  assert.ok(matchesRegex('订单号: 12345', '\\d{5}'));
  assert.ok(matchesRegex('Hello', '/^hello$/i'));
  assert.throws(() => matchesRegex('x', '('), { name: 'LoomError' });
  const schema = { type: 'object', required: ['a'], properties: { a: { type: 'integer' } } };
  assert.deepEqual(checkJsonSchema('```json\n{"a": 1}\n```', schema).valid, true);
  const bad = checkJsonSchema('{"a": "x"}', schema);
  assert.equal(bad.valid, false);
  assert.match(bad.errors[0], /^\/a: /);
  assert.match(checkJsonSchema('not json', schema).errors[0], /^parse: /);
});

test('classification report: per class, micro, macro, weighted, confusion', () => {
  const r = classificationReport(['a', 'a', 'b', 'b', 'c'], ['a', 'b', 'b', null, 'c']);
  close(r.accuracy, 0.6);
  assert.deepEqual(
    r.perClass.map((c) => [c.label, c.support]),
    [
      ['a', 2],
      ['b', 2],
      ['c', 1],
    ],
  );
  close(r.perClass[0].precision, 1);
  close(r.perClass[0].recall, 0.5);
  close(r.perClass[0].f1, 2 / 3);
  close(r.perClass[1].precision, 0.5);
  close(r.perClass[1].f1, 0.5);
  close(r.micro.precision, 0.75);
  close(r.micro.recall, 0.6);
  close(r.micro.f1, 2 / 3);
  close(r.macro.precision, 2.5 / 3);
  close(r.macro.recall, 2 / 3);
  close(r.macro.f1, (2 / 3 + 0.5 + 1) / 3);
  close(r.weighted.precision, 0.8);
  close(r.weighted.recall, 0.6);
  close(r.weighted.f1, (2 * (2 / 3) + 2 * 0.5 + 1) / 5);
  assert.deepEqual(r.confusion.columns, ['a', 'b', 'c', NO_LABEL]);
  assert.deepEqual(r.confusion.matrix, [
    [1, 1, 0, 0],
    [0, 1, 0, 1],
    [0, 0, 1, 0],
  ]);
  assert.throws(() => classificationReport(['a'], []), { name: 'LoomError' });
});

test('label extraction from generations', () => {
  const labels = ['refund', 'order_status', '退款', 'refund_request'];
  assert.equal(extractLabel('I think this is a Refund request', labels), 'refund');
  assert.equal(extractLabel('Category: refund_request.', labels), 'refund_request');
  assert.equal(extractLabel('用户想要退款。', labels), '退款');
  assert.equal(extractLabel('nothing here', labels), null);
  assert.equal(
    extractLabel('Answer: ORDER_STATUS', labels, { mode: 'regex', pattern: 'Answer:\\s*(\\w+)' }),
    'order_status',
  );
});

test('perplexity and multiple-choice scoring with length normalisation', () => {
  close(perplexity([Math.log(0.5), Math.log(0.25)]), Math.sqrt(8), 1e-12);
  close(perplexity([[Math.log(0.5)], [Math.log(0.25)]]), Math.sqrt(8), 1e-12);
  const items = [
    { question: 'q1', choices: ['yes', 'absolutely not'], answer: 1 },
    { question: 'q2', choices: ['a', 'b', 'c', 'd'], answer: 2 },
  ];
  // Item 1: raw log-likelihood prefers 'yes' (-3 > -7); per character 'absolutely not' wins (-0.5 > -1).
  const r = scoreChoices(items, [
    [-3, -7],
    [-4, -3, -1, -2],
  ]);
  assert.equal(r.acc, 0.5);
  assert.equal(r.accNorm, 1);
});

test('multiple-choice loaders: C-Eval CSV, headerless MMLU CSV, JSONL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-mc-'));
  const ceval = join(dir, 'ceval.csv');
  writeFileSync(
    ceval,
    'id,question,A,B,C,D,answer,explanation\n0,"1+1=?",1,2,3,4,B,\n1,中国的首都是,上海,北京,广州,深圳,B,因为\n',
  );
  const items = loadMultipleChoice(ceval, 'math');
  assert.equal(items.length, 2);
  assert.deepEqual(items[1].choices, ['上海', '北京', '广州', '深圳']);
  assert.equal(items[1].answer, 1);
  const mmlu = join(dir, 'mmlu.csv');
  writeFileSync(mmlu, '"What is 2+2?",3,4,5,6,B\n');
  assert.equal(loadMultipleChoice(mmlu)[0].answer, 1);
  const jl = join(dir, 'x.jsonl');
  writeFileSync(
    jl,
    '{"question":"q","choices":["x","y","z"],"answer":2}\n{"question":"q2","A":"a","B":"b","answer":"A"}\n',
  );
  const j = loadMultipleChoice(jl);
  assert.deepEqual([j[0].answer, j[1].answer, j[1].choices.length], [2, 0, 2]);
  writeFileSync(jl, '{"question":"q","choices":["x","y"],"answer":"E"}\n');
  assert.throws(
    () => loadMultipleChoice(jl),
    (e: Error & { code?: string; line?: number }) => e.code === 'INPUT_MALFORMED' && e.line === 1,
  );
});

test('numpy-style percentiles and sacrebleu-style CI', () => {
  close(percentileSorted([1, 2, 3, 4], 25), 1.75);
  close(percentileSorted([1, 2, 3, 4], 50), 2.5);
  close(percentileSorted([1, 2, 3, 4], 100), 4);
  const scores = Array.from({ length: 40 }, (_, i) => i);
  const { mean, ci } = estimateCi(scores);
  close(mean, 19.5);
  close(ci, 0.5 * (38 - 1));
});

test('seeded RNG is deterministic and unbiased enough', () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const xs = Array.from({ length: 5 }, () => a.intUnbiased(1000));
  assert.deepEqual(
    xs,
    Array.from({ length: 5 }, () => b.intUnbiased(1000)),
  );
  const r = new Rng(1);
  const counts = [0, 0, 0];
  for (let i = 0; i < 30000; i++) counts[r.intUnbiased(3)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 400, `bucket ${c}`);
});

test('bootstrap CI brackets the corpus BLEU and is reproducible', () => {
  const refs = Array.from({ length: 60 }, (_, i) => `the cat number ${i} sat on the mat today`);
  const hyps = refs.map((r, i) => (i % 3 === 0 ? r : r.replace('cat', 'dog').replace('today', '')));
  const bleu = new Bleu();
  const stats = bleu.corpusStats(hyps, [refs]);
  const a = bootstrapCorpus(bleu, stats, { nSamples: 200, seed: 3 });
  const b = bootstrapCorpus(bleu, stats, { nSamples: 200, seed: 3 });
  assert.deepEqual(a, b);
  close(a.score, bleu.corpusScore(hyps, [refs]).score);
  assert.ok(a.low <= a.score && a.score <= a.high, JSON.stringify(a));
  const m = bootstrapMean([1, 0, 1, 1], { nSamples: 100 });
  close(m.score, 0.75);
});

test('paired tests: a clearly better system is significant, a reshuffle of equals is not', () => {
  const refs = Array.from({ length: 80 }, (_, i) => `we will ship order ${i} to your home address tomorrow morning`);
  const good = refs.map((r) => r);
  const bad = refs.map((r) => r.split(' ').reverse().join(' '));
  const bleu = new Bleu();
  const sGood = bleu.corpusStats(good, [refs]);
  const sBad = bleu.corpusStats(bad, [refs]);
  assert.ok(pairedBootstrap(bleu, sBad, sGood, { nSamples: 300 }).pValue < 0.01);
  assert.ok(pairedApproxRandomization(bleu, sBad, sGood, { nSamples: 300 }).pValue < 0.01);
  // Two systems that are each good on alternating halves: equal quality, no significant difference.
  const mixA = refs.map((r, i) => (i % 2 ? r : bad[i]));
  const mixB = refs.map((r, i) => (i % 2 ? bad[i] : r));
  const p = pairedApproxRandomization(bleu, bleu.corpusStats(mixA, [refs]), bleu.corpusStats(mixB, [refs]), {
    nSamples: 300,
  });
  assert.ok(p.pValue > 0.2, `p = ${p.pValue}`);
});

test('ROUGE for Chinese: char, whitespace and jieba tokenizers', () => {
  const ch = new RougeScorer(['rouge1', 'rougeL'], { tokenizer: 'char' }).score('我们今天去北京。', '我们明天去北京');
  // 7 of 7 predicted characters are in the 8-character target except 明 → 6 matches.
  close(ch.rouge1.precision, 6 / 7);
  close(ch.rouge1.recall, 6 / 8);
  const ws = new RougeScorer(['rouge1'], { tokenizer: 'whitespace' }).score('我们 今天 去 北京', '我们 明天 去 北京');
  close(ws.rouge1.fmeasure, 0.75);
  const words = jiebaTokenize('我们今天去北京大学。');
  assert.ok(words.includes('北京大学') || words.includes('北京'), words.join('/'));
  assert.equal(words.join(''), '我们今天去北京大学。');
  const jb = new RougeScorer(['rouge1'], { tokenizer: 'jieba' }).score('我们今天去北京', '我们今天去北京');
  assert.equal(jb.rouge1.fmeasure, 1);
  assert.deepEqual(splitSentences('First one. Second one!\n第一句。第二句？'), [
    'First one.',
    'Second one!',
    '第一句。',
    '第二句？',
  ]);
});
