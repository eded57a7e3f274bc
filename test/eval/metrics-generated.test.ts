/**
 * Extra parity vectors produced by running sacrebleu 2.6.0 and rouge-score 0.1.2 from source
 * (test/fixtures/eval/gen_parity.py): every BLEU tokenizer on English, Chinese, Japanese, Korean and astral-plane
 * text, smoothing methods, lowercase, missing references, chrF/chrF+/chrF++ with whitespace and eps options,
 * signatures, and ROUGE-1/2/3/L/Lsum with and without stemming, default and character tokenization.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Bleu, type BleuSmoothMethod, formatBleu } from '../../src/eval/metrics/bleu.ts';
import type { BleuTokenizerName } from '../../src/eval/metrics/bleu-tokenizers.ts';
import { Chrf, formatChrf } from '../../src/eval/metrics/chrf.ts';
import { numRefs } from '../../src/eval/metrics/corpus.ts';
import { RougeScorer } from '../../src/eval/metrics/rouge.ts';
import type { RougeTokenizerName } from '../../src/eval/metrics/rouge-tokenizers.ts';

interface GenCase {
  id: string;
  metric: 'bleu_corpus' | 'bleu_sentence' | 'chrf_corpus' | 'chrf_sentence' | 'rouge' | 'rouge_multi';
  params: Record<string, unknown>;
  hyps: string[];
  refs: (string | null)[][] | string[];
  expected: Record<string, unknown>;
  signature?: string;
}

const cases = (
  JSON.parse(readFileSync(new URL('../fixtures/eval/parity_generated.json', import.meta.url), 'utf8')) as {
    cases: GenCase[];
  }
).cases;

const near = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: got ${a}, expected ${b}`);

test('generated parity fixture is complete', () => {
  assert.ok(cases.length >= 500, `only ${cases.length} cases`);
});

// Grouped per metric kind so a failure names the case but the runner is not flooded with 500 tests.
for (const kind of ['bleu_corpus', 'bleu_sentence', 'chrf_corpus', 'chrf_sentence', 'rouge', 'rouge_multi'] as const) {
  test(`generated parity: ${kind}`, () => {
    const failures: string[] = [];
    for (const c of cases.filter((x) => x.metric === kind)) {
      try {
        check(c);
      } catch (e) {
        failures.push(`${c.id}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    assert.deepEqual(failures, []);
  });
}

function check(c: GenCase): void {
  const p = c.params;
  if (c.metric.startsWith('bleu')) {
    const bleu = new Bleu({
      tokenize: (p.tokenize as BleuTokenizerName) ?? '13a',
      lowercase: (p.lowercase as boolean) ?? false,
      smoothMethod: (p.smooth_method as BleuSmoothMethod) ?? 'exp',
      smoothValue: (p.smooth_value as number | null) ?? null,
      effectiveOrder: (p.effective_order as boolean) ?? false,
    });
    const s =
      c.metric === 'bleu_sentence'
        ? bleu.sentenceScore(c.hyps[0], c.refs as string[])
        : bleu.corpusScore(c.hyps, c.refs as (string | null)[][]);
    const e = c.expected as {
      score: number;
      counts: number[];
      totals: number[];
      precisions: number[];
      bp: number;
      sys_len: number;
      ref_len: number;
      formatted: string;
    };
    near(s.score, e.score, 'score');
    assert.deepEqual(s.counts, e.counts, 'counts');
    assert.deepEqual(s.totals, e.totals, 'totals');
    for (const [i, v] of e.precisions.entries()) near(s.precisions[i], v, `precision ${i + 1}`);
    near(s.bp, e.bp, 'bp');
    assert.equal(s.sysLen, e.sys_len);
    assert.equal(s.refLen, e.ref_len);
    assert.equal(formatBleu(s), e.formatted);
    if (c.signature) assert.equal(bleu.signature(numRefs(c.hyps, c.refs as (string | null)[][])), c.signature);
    return;
  }
  if (c.metric.startsWith('chrf')) {
    const chrf = new Chrf({
      wordOrder: (p.word_order as number) ?? 0,
      whitespace: (p.whitespace as boolean) ?? false,
      lowercase: (p.lowercase as boolean) ?? false,
      epsSmoothing: (p.eps_smoothing as boolean) ?? false,
    });
    const s =
      c.metric === 'chrf_sentence'
        ? chrf.sentenceScore(c.hyps[0], c.refs as string[])
        : chrf.corpusScore(c.hyps, c.refs as (string | null)[][]);
    const e = c.expected as { score: number; formatted: string };
    near(s.score, e.score, 'score');
    assert.equal(formatChrf(s), e.formatted);
    if (c.signature) assert.equal(chrf.signature(numRefs(c.hyps, c.refs as (string | null)[][])), c.signature);
    return;
  }
  const scorer = new RougeScorer(p.rouge_types as string[], {
    useStemmer: p.use_stemmer as boolean,
    tokenizer: p.tokenizer as RougeTokenizerName,
  });
  const got =
    c.metric === 'rouge'
      ? scorer.score((c.refs as string[])[0], c.hyps[0])
      : scorer.scoreMulti(c.refs as string[], c.hyps[0]);
  for (const [type, want] of Object.entries(c.expected as Record<string, Record<string, number>>)) {
    for (const k of ['precision', 'recall', 'fmeasure'] as const) near(got[type][k], want[k], `${type}.${k}`);
  }
}
