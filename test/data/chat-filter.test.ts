/**
 * The `chat` filter preset on real chat data: ordinary utterances survive (drop rate under 1 % per language on
 * a committed sample of BANKING77, CLINC150, xSID, ABCD and CrossWOZ; see test/fixtures/data/chat-filter/SOURCE.md)
 * while repetitive spam is still caught. Before the calibration, 1.7 % of the English sample was dropped (Gopher's
 * top_4_gram fired on one-sentence texts where nothing repeats) and 24 of 25 Chinese spam texts were kept.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { evaluateText, resolveFiltersConfig } from '../../src/data/filters/index.ts';
import { repetition } from '../../src/data/filters/rules.ts';

const DIR = 'test/fixtures/data/chat-filter';
type Row = { text: string; lang: 'en' | 'zh'; corpus?: string };
const rows = (f: string): Row[] =>
  readFileSync(`${DIR}/${f}`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row);

const chat = resolveFiltersConfig({ preset: 'chat' });

function rates(data: Row[]): Record<string, { n: number; dropped: string[] }> {
  const out: Record<string, { n: number; dropped: string[] }> = {
    en: { n: 0, dropped: [] },
    zh: { n: 0, dropped: [] },
  };
  for (const r of data) {
    const o = out[r.lang]!;
    o.n++;
    const ev = evaluateText(r.text, chat, false);
    if (ev.drop) o.dropped.push(`${ev.drop.reason}: ${r.text}`);
  }
  return out;
}

describe('chat preset on real chat data', () => {
  test('ordinary utterances: drop rate under 1 % for English and for Chinese', () => {
    const r = rates(rows('ordinary.jsonl'));
    assert.equal(r.en!.n, 840);
    assert.equal(r.zh!.n, 800);
    for (const lang of ['en', 'zh']) {
      const { n, dropped } = r[lang]!;
      assert.ok(dropped.length / n < 0.01, `${lang}: ${dropped.length}/${n} dropped\n${dropped.join('\n')}`);
    }
  });

  test('repetitive spam is still caught (at least 24 of 25 per language)', () => {
    const spam = rows('spam.jsonl');
    for (const lang of ['en', 'zh'] as const) {
      const mine = spam.filter((s) => s.lang === lang);
      const kept = mine.filter((s) => !evaluateText(s.text, chat, false).drop).map((s) => s.text);
      assert.equal(mine.length, 25);
      assert.ok(kept.length <= 1, `${lang}: kept ${kept.length} spam texts\n${kept.join('\n')}`);
    }
  });

  test('top_n_gram does not fire on a one-sentence text where no n-gram repeats', () => {
    // BANKING77 queries the old preset dropped as gopher_rep.top_4_gram (one 4-gram ≈ 17 % of 104 characters).
    for (const text of [
      'How long should it take for my new card to arrive in them mail? What should I do if I never receive it?',
      'The card I thought was lost was just in my jacket, so can I reactivate it since I found it this morning?',
    ]) {
      const en = chat.en.repetition;
      assert.ok(en);
      assert.equal(repetition(text, { ...en, minChars: 0, topNGramMinCount: 2 }, 'word'), undefined);
      // datatrove's counting (a single occurrence counts) is what fired.
      const v = repetition(text, { ...en, minChars: 0, topNGramMinCount: 1, topNGrams: [[4, 0.16]] }, 'word');
      assert.equal(v?.rule, 'top_4_gram');
      assert.equal(evaluateText(text, chat, false).drop, undefined);
    }
  });
});
