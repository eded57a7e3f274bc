/**
 * Parity with rouge-score 0.1.2 on every case of test/fixtures/eval/reference/rouge_cases.json, and with NLTK's
 * PorterStemmer (NLTK_EXTENSIONS) on every word of porter_stemmer_cases.json.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { porterStem } from '../../src/eval/metrics/porter.ts';
import {
  findUnion,
  lcsIndices,
  lcsTable,
  type RougeScore,
  RougeScorer,
  summaryLevelLcs,
  unionLcs,
} from '../../src/eval/metrics/rouge.ts';
import { rougeDefaultTokenize } from '../../src/eval/metrics/rouge-tokenizers.ts';
import { bootstrapAggregate } from '../../src/eval/metrics/stats.ts';

const dir = new URL('../fixtures/eval/reference/', import.meta.url);
const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as T;

interface RougeCase {
  id: string;
  metric: string;
  params: {
    rouge_types?: string[];
    use_stemmer?: boolean;
    split_summaries?: boolean;
    tokenizer?: string;
    confidence_interval?: number;
    n_samples?: number;
  };
  hyps: string[];
  refs: string[];
  input?: string;
  inputs?: Record<string, unknown>;
  expected: Record<string, unknown>;
  tolerance: {
    places?: number;
    abs?: number;
    exact?: boolean;
    exact_for?: string[];
    places_for?: Record<string, number>;
  };
  expected_full_precision_generated?: Record<string, unknown>;
}

const rougeCases = load<{ cases: RougeCase[] }>('rouge_cases.json').cases;
const porterCases = load<{ cases: { id: string; inputs: string[]; expected: string[] }[] }>(
  'porter_stemmer_cases.json',
).cases;

/** Python unittest assertAlmostEqual(a, b, places): round(a - b, places) == 0. */
function almost(actual: number, expected: number, places: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) < 0.5 * 10 ** -places,
    `${what}: got ${actual}, expected ${expected} (places ${places})`,
  );
}

function checkScore(got: RougeScore, want: Record<string, number>, tol: RougeCase['tolerance'], what: string): void {
  for (const [k, v] of Object.entries(want)) {
    const a = got[k as keyof RougeScore];
    if (tol.exact || tol.exact_for?.includes(k)) assert.equal(a, v, `${what}.${k}`);
    else if (tol.places_for?.[k] !== undefined) almost(a, v, tol.places_for[k], `${what}.${k}`);
    else if (tol.abs !== undefined) assert.ok(Math.abs(a - v) <= tol.abs, `${what}.${k}: ${a} vs ${v}`);
    else almost(a, v, tol.places ?? 7, `${what}.${k}`);
  }
}

test('every rouge reference case is covered', () => {
  assert.equal(rougeCases.length, 49);
});

for (const c of rougeCases) {
  test(`rouge ${c.id}`, () => {
    const p = c.params;
    const full = c.expected_full_precision_generated as Record<string, unknown> | undefined;
    switch (c.metric) {
      case 'rouge':
      case 'rouge_multi': {
        const make = () =>
          new RougeScorer(p.rouge_types!, {
            useStemmer: p.use_stemmer ?? false,
            splitSummaries: p.split_summaries ?? false,
            tokenizer: 'default',
          });
        if (c.expected.error) {
          assert.throws(() => make().score(c.refs[0], c.hyps[0]), /ROUGE type|positive n/);
          return;
        }
        const scorer = make();
        const got = c.metric === 'rouge' ? scorer.score(c.refs[0], c.hyps[0]) : scorer.scoreMulti(c.refs, c.hyps[0]);
        if (c.expected.result_keys) {
          assert.deepEqual(Object.keys(got), c.expected.result_keys);
          return;
        }
        for (const [type, want] of Object.entries(c.expected)) {
          checkScore(got[type], want as Record<string, number>, c.tolerance, type);
        }
        if (full) {
          for (const [type, want] of Object.entries(full)) {
            for (const [k, v] of Object.entries(want as Record<string, number>)) {
              assert.ok(Math.abs(got[type][k as keyof RougeScore] - v) <= 1e-12, `${type}.${k} full precision`);
            }
          }
        }
        return;
      }
      case 'rouge_tokenize':
        assert.deepEqual(rougeDefaultTokenize(c.input!, p.use_stemmer ?? false), c.expected.tokens);
        return;
      case 'lcs_internal': {
        const i = c.inputs as { ref: number[]; can?: number[]; c_list?: number[][]; find_union?: number[][] };
        if (i.can) {
          const t = lcsTable(i.ref, i.can);
          assert.equal(t[i.ref.length][i.can.length], c.expected.lcs_length);
          const idx = lcsIndices(i.ref, i.can);
          assert.deepEqual(idx, c.expected.backtrack_ref_indices);
          assert.deepEqual(
            idx.map((k) => i.ref[k]),
            c.expected.lcs_values,
          );
        } else {
          assert.deepEqual(findUnion(i.find_union!), c.expected.find_union);
          assert.deepEqual(unionLcs(i.ref, i.c_list!), c.expected.union_lcs_values);
        }
        return;
      }
      case 'rouge_lsum_pretokenized': {
        const i = c.inputs as { ref_sents: unknown[][]; can_sents: unknown[][] };
        const got = summaryLevelLcs(i.ref_sents, i.can_sents);
        checkScore(got, c.expected as Record<string, number>, c.tolerance, 'lsum');
        if (full)
          for (const [k, v] of Object.entries(full))
            assert.ok(Math.abs(got[k as keyof RougeScore] - (v as number)) <= 1e-12);
        return;
      }
      case 'rouge_bootstrap_aggregate': {
        const rows = (c.inputs as { scores: Record<'precision' | 'recall' | 'fmeasure', number>[] }).scores;
        const agg = bootstrapAggregate(rows, {
          confidenceInterval: p.confidence_interval,
          nSamples: p.n_samples,
          seed: 123,
        });
        for (const band of ['low', 'mid', 'high'] as const) {
          checkScore(
            agg[band] as RougeScore,
            (c.expected as Record<string, Record<string, number>>)[band],
            c.tolerance,
            band,
          );
        }
        return;
      }
      default:
        assert.fail(`unhandled rouge case kind ${c.metric}`);
    }
  });
}

test('porter stemmer cases cover the NLTK doctest, unit tests and the generated vocabulary', () => {
  assert.equal(porterCases.length, 6);
  assert.ok(porterCases.reduce((n, c) => n + c.inputs.length, 0) > 3500);
});

for (const c of porterCases) {
  test(`porter ${c.id}`, () => {
    const wrong: string[] = [];
    c.inputs.forEach((w, i) => {
      const got = porterStem(w);
      if (got !== c.expected[i]) wrong.push(`${w} -> ${got} (want ${c.expected[i]})`);
    });
    assert.deepEqual(wrong, []);
  });
}
