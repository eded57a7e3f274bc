/**
 * Parity with sacrebleu 2.6.0 on every case of test/fixtures/eval/reference/sacrebleu_cases.json (vectors taken from
 * sacrebleu's own tests and README, re-run on that commit). Upstream tolerances are checked as stated, and the
 * full-precision values of the re-run to 1e-9 plus the formatted score line character for character.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Bleu, type BleuSmoothMethod, computeBleu, formatBleu } from '../../src/eval/metrics/bleu.ts';
import type { BleuTokenizerName } from '../../src/eval/metrics/bleu-tokenizers.ts';
import { Chrf, formatChrf } from '../../src/eval/metrics/chrf.ts';
import { numRefs } from '../../src/eval/metrics/corpus.ts';
import { pyFixed } from '../../src/eval/metrics/pyfmt.ts';

const REF_PATH = new URL('../fixtures/eval/reference/sacrebleu_cases.json', import.meta.url);

interface Case {
  id: string;
  metric: 'bleu_corpus' | 'bleu_sentence' | 'bleu_from_stats' | 'chrf_corpus' | 'chrf_sentence';
  params: Record<string, unknown>;
  hyps: string[];
  refs: (string | null)[][] | (string | null)[];
  inputs?: { correct: number[]; total: number[]; sys_len: number; ref_len: number };
  expected: {
    score?: number;
    score_2dp?: string;
    formatted?: string;
    signature?: string;
    counts?: number[];
    totals?: number[];
  };
  tolerance: { abs?: number; exact?: boolean; format?: string };
  expected_full_precision_generated?: {
    score: number;
    counts?: number[];
    totals?: number[];
    precisions?: number[];
    bp?: number;
    sys_len?: number;
    ref_len?: number;
    formatted: string;
  };
}

const cases = (JSON.parse(readFileSync(REF_PATH, 'utf8')) as { cases: Case[] }).cases;

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected} (tol ${tol})`);
}

function bleuOf(p: Record<string, unknown>): Bleu {
  return new Bleu({
    tokenize: p.tokenize as BleuTokenizerName,
    smoothMethod: p.smooth_method as BleuSmoothMethod,
    smoothValue: p.smooth_value as number | null,
    effectiveOrder: p.effective_order as boolean,
    lowercase: p.lowercase as boolean,
    maxNgramOrder: p.max_ngram_order as number,
  });
}

function chrfOf(p: Record<string, unknown>): Chrf {
  return new Chrf({
    charOrder: p.char_order as number,
    wordOrder: p.word_order as number,
    beta: p.beta as number,
    lowercase: p.lowercase as boolean,
    whitespace: p.whitespace as boolean,
    epsSmoothing: p.eps_smoothing as boolean,
  });
}

test('every sacrebleu reference case is covered', () => {
  assert.equal(cases.length, 75);
  const kinds = new Set(cases.map((c) => c.metric));
  for (const k of kinds)
    assert.ok(['bleu_corpus', 'bleu_sentence', 'bleu_from_stats', 'chrf_corpus', 'chrf_sentence'].includes(k), k);
});

for (const c of cases) {
  test(`sacrebleu ${c.id}`, () => {
    const full = c.expected_full_precision_generated;
    let score: number;
    let formatted: string;
    if (c.metric.startsWith('bleu')) {
      const p = c.params;
      let s: ReturnType<typeof computeBleu>;
      if (c.metric === 'bleu_from_stats') {
        const i = c.inputs!;
        s = computeBleu(
          i.correct,
          i.total,
          i.sys_len,
          i.ref_len,
          p.smooth_method as BleuSmoothMethod,
          p.smooth_value as number | null,
          p.effective_order as boolean,
          p.max_ngram_order as number,
        );
      } else if (c.metric === 'bleu_sentence') {
        s = bleuOf(p).sentenceScore(c.hyps[0], c.refs as (string | null)[]);
      } else {
        s = bleuOf(p).corpusScore(c.hyps, c.refs as (string | null)[][]);
      }
      score = s.score;
      formatted = formatBleu(s);
      if (c.expected.counts) assert.deepEqual(s.counts, c.expected.counts);
      if (c.expected.totals) assert.deepEqual(s.totals, c.expected.totals);
      if (full) {
        if (full.counts) assert.deepEqual(s.counts, full.counts, 'counts');
        if (full.totals) assert.deepEqual(s.totals, full.totals, 'totals');
        for (const [k, v] of (full.precisions ?? []).entries()) close(s.precisions[k], v, 1e-9, `precision ${k + 1}`);
        if (full.bp !== undefined) close(s.bp, full.bp, 1e-12, 'bp');
        if (full.sys_len !== undefined) assert.equal(s.sysLen, full.sys_len);
        if (full.ref_len !== undefined) assert.equal(s.refLen, full.ref_len);
      }
      if (c.expected.signature) {
        const bleu = bleuOf(p);
        const sig = bleu.signature(numRefs(c.hyps, c.refs as (string | null)[][]), { version: '2.0.0' });
        assert.equal(sig, c.expected.signature);
      }
    } else {
      const m = chrfOf(c.params);
      const s =
        c.metric === 'chrf_sentence'
          ? m.sentenceScore(c.hyps[0], c.refs as (string | null)[])
          : m.corpusScore(c.hyps, c.refs as (string | null)[][]);
      score = s.score;
      formatted = formatChrf(s);
    }
    if (c.expected.score !== undefined) {
      if (c.tolerance.exact) assert.equal(score, c.expected.score);
      else close(score, c.expected.score, c.tolerance.abs ?? 1e-9, 'score (upstream tolerance)');
    }
    if (c.expected.score_2dp !== undefined) assert.equal(pyFixed(score, 2), c.expected.score_2dp);
    if (c.expected.formatted !== undefined) assert.equal(formatted, c.expected.formatted);
    if (full) {
      close(score, full.score, 1e-9, 'score (full precision)');
      assert.equal(formatted, full.formatted);
    }
  });
}
