import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataRow } from '../../src/core/types.ts';
import {
  c4,
  charTokens,
  DEFAULTS,
  dupNGramChars,
  evaluateText,
  fineweb,
  gopherQuality,
  lengthRule,
  qualityFilterStep,
  type RepetitionConfig,
  repetition,
  resolveFiltersConfig,
  topNGramChars,
  wordTokens,
  zhQuality,
} from '../../src/data/filters/index.ts';
import { detectLanguage } from '../../src/data/langid.ts';
import { runStep } from '../../src/data/step-harness.ts';

function on<T>(x: T | false): T {
  assert.notEqual(x, false);
  return x as T;
}

const row = (id: string, fields: Partial<DataRow>): DataRow => ({
  id,
  meta: {},
  source: { file: 'f', line: 1 },
  ...fields,
});

/** Repetition config with every rule off; tests switch on the one they check. */
const OFF: RepetitionConfig = {
  dupLineFrac: null,
  dupParaFrac: null,
  dupLineCharFrac: null,
  dupParaCharFrac: null,
  topNGrams: [],
  dupNGrams: [],
  minChars: 0,
  topNGramMinCount: 1,
};

describe('Gopher repetition (datatrove definitions, fractions by arithmetic)', () => {
  it('duplicate line fraction: 4 repeats of 10 lines = 0.4 > 0.30; 3 of 10 = 0.30 is not above', () => {
    const uniq = ['one', 'two', 'three', 'four', 'five'];
    const text = [...uniq, 'same line', 'same line', 'same line', 'same line', 'same line'].join('\n');
    assert.deepEqual(repetition(text, { ...OFF, dupLineFrac: 0.3 }, 'word'), {
      rule: 'dup_line_frac',
      value: 4 / 10,
      threshold: 0.3,
    });
    const text3 = [...uniq, 'six', 'same line', 'same line', 'same line', 'same line'].join('\n');
    assert.equal(repetition(text3, { ...OFF, dupLineFrac: 0.3 }, 'word'), undefined);
  });

  it('duplicate line characters over the whole text length', () => {
    // 3 duplicates of "repeated" (8 chars) = 24 chars; text = 4×8 + "x" + 4 newlines = 37 chars.
    const text = ['repeated', 'repeated', 'repeated', 'repeated', 'x'].join('\n');
    const v = repetition(text, { ...OFF, dupLineCharFrac: 0.2 }, 'word');
    assert.deepEqual(v, { rule: 'dup_line_char_frac', value: 24 / 37, threshold: 0.2 });
  });

  it('duplicate paragraph fraction and characters (paragraphs split on blank lines)', () => {
    // Paragraphs: "p one", "p one", "other", "more" → 1 duplicate of 4 = 0.25; its chars 5 / len.
    const text = 'p one\n\np one\n\nother\n\nmore';
    assert.deepEqual(repetition(text, { ...OFF, dupParaFrac: 0.2 }, 'word'), {
      rule: 'dup_para_frac',
      value: 1 / 4,
      threshold: 0.2,
    });
    assert.deepEqual(repetition(text, { ...OFF, dupParaCharFrac: 0.1 }, 'word'), {
      rule: 'dup_para_char_frac',
      value: 5 / text.length,
      threshold: 0.1,
    });
  });

  it('top 2-gram: chars of the most common bigram (words joined by one space) × count / length', () => {
    // Bigrams: "the cat"×3, "cat the"×2, "cat dog"×1 → 7 chars × 3 = 21 over 27 chars.
    const text = 'the cat the cat the cat dog';
    assert.equal(topNGramChars(wordTokens(text), 2, 1), 21);
    assert.deepEqual(repetition(text, { ...OFF, topNGrams: [[2, 0.2]] }, 'word'), {
      rule: 'top_2_gram',
      value: 21 / 27,
      threshold: 0.2,
    });
    // Tie on count: the bigram seen first wins ("aa bb", 5 chars), as Counter.most_common does.
    assert.equal(topNGramChars(wordTokens('aa bb c dddd aa bb c dddd'), 2, 1), 10);
  });

  it('duplicate n-grams are counted greedily, skipping n tokens after a repeat', () => {
    // "a b c d e a b c d e": the second "abcde" repeats → 5 chars (no separators) over 19.
    const t1 = 'a b c d e a b c d e';
    assert.equal(dupNGramChars(wordTokens(t1), 5), 5);
    assert.deepEqual(repetition(t1, { ...OFF, dupNGrams: [[5, 0.15]] }, 'word'), {
      rule: 'dup_5_gram',
      value: 5 / 19,
      threshold: 0.15,
    });
    // 8 × "a": repeat found at index 1 → +5, jump to 6 > last start 3 → total 5 (not 15).
    assert.equal(dupNGramChars(wordTokens('a a a a a a a a'), 5), 5);
  });

  it('Chinese variant uses characters: top 2-char-gram of 你好世界你好世界 = 2×2/8', () => {
    const text = '你好世界你好世界';
    assert.equal(topNGramChars(charTokens(text), 2, 0), 4);
    assert.deepEqual(repetition(text, { ...OFF, topNGrams: [[2, 0.2]] }, 'char'), {
      rule: 'top_2_gram',
      value: 0.5,
      threshold: 0.2,
    });
    // minChars skips the n-gram rules for short texts.
    assert.equal(repetition(text, { ...OFF, topNGrams: [[2, 0.2]], minChars: 100 }, 'char'), undefined);
  });
});

describe('Gopher quality', () => {
  const Q = DEFAULTS.gopherQuality;
  const words = (n: number) => Array.from({ length: n }, (_, i) => (i % 2 ? 'house' : 'the')).join(' ');

  it('word count bounds: 49 words drop, 50 pass', () => {
    assert.deepEqual(gopherQuality(words(49), Q), { rule: 'short_doc', value: 49, threshold: 50 });
    assert.equal(gopherQuality(words(50), Q), undefined);
  });

  it('mean word length: 48 × "a" + 2 × "the" = 54/50 chars', () => {
    const text = `${Array(48).fill('a').join(' ')} the the`;
    assert.deepEqual(gopherQuality(text, Q), { rule: 'below_avg_word_len', value: 54 / 50, threshold: 3 });
  });

  it('hash ratio counts every token: 6 "#" among 56 tokens', () => {
    const text = `${words(50)} # # # # # #`;
    assert.deepEqual(gopherQuality(text, Q), { rule: 'too_many_hashes', value: 6 / 56, threshold: 0.1 });
  });

  it('bullet and ellipsis line ratios', () => {
    const line = 'the house has a garden';
    const bullets = Array(10).fill(`• ${line}`).join('\n');
    assert.deepEqual(gopherQuality(bullets, Q), { rule: 'too_many_bullets', value: 1, threshold: 0.9 });
    const ell = [...Array(4).fill(`${line} ...`), ...Array(6).fill(line)].join('\n');
    // 4 "..." among 50 words + 4 symbol tokens = 0.074 ≤ 0.1, so the line rule decides: 4/10.
    assert.deepEqual(gopherQuality(ell, Q), { rule: 'too_many_end_ellipsis', value: 4 / 10, threshold: 0.3 });
  });

  it('alphabetic-word ratio and stop words', () => {
    const nums = `${words(50)} ${Array(15).fill('123').join(' ')}`;
    assert.deepEqual(gopherQuality(nums, Q), { rule: 'below_alpha_ratio', value: 50 / 65, threshold: 0.8 });
    const noStop = Array(50).fill('garden').join(' ');
    assert.deepEqual(gopherQuality(noStop, Q), { rule: 'few_stop_words', value: 0, threshold: 2 });
  });
});

describe('Chinese character-based quality', () => {
  const Z = DEFAULTS.zhQuality;
  it('length ≥ 200 non-space chars, Han ≥ 30 %, stop characters', () => {
    const base = '我们的客户服务在周一到周五提供帮助。';
    assert.equal(base.length, 18);
    const t = base.repeat(12);
    assert.deepEqual(zhQuality(t.slice(0, 199), Z), { rule: 'short_doc', value: 199, threshold: 200 });
    assert.equal(zhQuality(t.slice(0, 200), Z), undefined);
    // 100 Han + 300 Latin letters (no spaces): Han ratio 0.25.
    const mixed = `${'的'.repeat(100)}${'a'.repeat(300)}`;
    assert.deepEqual(zhQuality(mixed, Z), { rule: 'han_ratio', value: 0.25, threshold: 0.3 });
    const noStop = '客服周一到周五提供帮助'.repeat(20);
    assert.deepEqual(zhQuality(noStop, Z), { rule: 'few_stop_words', value: 0, threshold: 2 });
  });
});

describe('C4 and FineWeb rules', () => {
  const C = { ...DEFAULTS.c4, minSentences: 3 };
  it('drops documents with lorem ipsum or a curly bracket, removes javascript and policy lines', () => {
    assert.equal(c4('Lorem ipsum dolor sit amet.', C, false).verdict?.rule, 'lorem_ipsum');
    assert.equal(c4('function f() { return 1; } is code.', C, false).verdict?.rule, 'curly_bracket');
    const text = [
      'This is the first sentence. And a second one.',
      'Please enable JavaScript to view this page.',
      'Read our privacy policy for details.',
      'A third sentence sits here.',
    ].join('\n');
    const r = c4(text, C, false);
    assert.equal(r.verdict, undefined);
    assert.equal(r.linesRemoved, 2);
    assert.equal(r.text, 'This is the first sentence. And a second one.\nA third sentence sits here.');
  });

  it('too few sentences and terminal punctuation (Chinese marks accepted for zh)', () => {
    const r = c4('One sentence only.\nTwo sentences here.', C, false);
    assert.deepEqual(r.verdict, { rule: 'too_few_sentences', value: 2, threshold: 3 });
    const tp = { ...C, terminalPunct: true, minSentences: 1 };
    assert.equal(c4('No ending here\nThis one ends.', tp, false).text, 'This one ends.');
    assert.equal(c4('没有标点的一行\n这一行有句号。', tp, true).text, '这一行有句号。');
    assert.equal(c4('Trailing dots...', tp, false).verdict?.rule, 'too_few_sentences');
  });

  it('FineWeb: line punctuation ratio ≤ 0.12, short lines ≥ 0.67, char dup ratio, list ratio', () => {
    const F = DEFAULTS.enFineweb;
    const long = 'this line is long enough to not be short at all';
    const nine = Array(9).fill(long);
    assert.deepEqual(fineweb([...nine, `${long}.`].join('\n'), F, false), {
      rule: 'line_punct_ratio',
      value: 1 / 10,
      threshold: 0.12,
    });
    const shortLines = [...Array(7).fill('short one.'), ...Array(3).fill(`${long}.`)];
    assert.deepEqual(fineweb(shortLines.join('\n'), { ...F, charDupRatio: null }, false), {
      rule: 'short_line_ratio',
      value: 7 / 10,
      threshold: 0.67,
    });
    // Lines "a b c." ×2 and "d e f g." : 1 duplicate of 6 chars over 6+6+8 = 20 chars (newlines excluded).
    const dup = 'a b c.\na b c.\nd e f g.';
    assert.deepEqual(fineweb(dup, { ...F, shortLineThr: null }, false), {
      rule: 'char_dup_ratio',
      value: 6 / 20,
      threshold: 0.01,
    });
    // 3 newlines over 8 tokens (6 words + 2 periods... here: "a." "b." "c." "d." → 8 tokens) = 0.375 > 0.3.
    const list = 'a.\nb.\nc.\nd.';
    assert.deepEqual(fineweb(list, { ...F, shortLineThr: null, charDupRatio: null }, false), {
      rule: 'list_ratio',
      value: 3 / 8,
      threshold: 0.3,
    });
  });

  it('length bounds count Han characters and Latin words', () => {
    const L = { minChars: 5, maxChars: 20, minWords: 3, maxWords: 10 };
    assert.equal(lengthRule('hi', L)?.rule, 'too_short_chars');
    assert.equal(lengthRule('x'.repeat(21), L)?.rule, 'too_long_chars');
    assert.equal(lengthRule('你好 ok', L), undefined);
    assert.deepEqual(lengthRule('hello you', L), { rule: 'too_few_words', value: 2, threshold: 3 });
  });
});

describe('language id', () => {
  it('labels zh, en and other with a score', () => {
    assert.equal(detectLanguage('我想退货，订单还没到。').lang, 'zh');
    assert.equal(detectLanguage('I want to return my order, it has not arrived yet.').lang, 'en');
    assert.equal(detectLanguage("Je voudrais retourner ma commande, elle n'est pas encore arrivée.").lang, 'other');
    assert.equal(
      detectLanguage('Der Kunde ist nicht zufrieden mit der Lieferung und will das Geld zurück').lang,
      'other',
    );
    assert.equal(detectLanguage('こんにちは、注文した商品がまだ届きません。').lang, 'other');
    assert.deepEqual(detectLanguage('12345 ...'), { lang: 'other', score: 0, hanRatio: 0 });
    // 4 Han units vs 1 Latin word (1 unit): zh with score 4 / 5.
    const mixed = detectLanguage('我要退货 iPhone');
    assert.equal(mixed.lang, 'zh');
    assert.equal(mixed.score, 4 / 5);
  });
});

describe('quality filter step and presets', () => {
  const en =
    'The store ships orders within two days of payment. You can track the parcel with the link in the e-mail we send. ' +
    'If an item arrives damaged, contact us within seven days and we will replace it or refund the full price. ' +
    'Returns are free for members, and refunds go back to the original payment method within five working days. ' +
    'Gift cards and downloaded software cannot be returned once they have been used.';
  const zh =
    '我们的商店在付款后两天内发货，您可以通过邮件中的链接查询包裹的物流信息。如果商品在运输中损坏，请在七天内联系客服，' +
    '我们会为您更换或者全额退款。会员退货免运费，退款会在五个工作日内原路退回到您的支付账户。' +
    '发票可以在订单详情页面申请，电子发票一般在一个工作日内开具，纸质发票会随下一次发货一起寄出。' +
    '如果您有其他问题，也可以在工作时间拨打客服热线，或者在应用内留言，我们会尽快回复您。' +
    '节假日期间发货时间可能延迟，请以页面公告为准。';

  it('web preset keeps clean zh/en text and drops with named reasons', async () => {
    const rows = [
      row('en', { text: en }),
      row('zh', { text: zh }),
      row('fr', {
        text: "Nous expédions les commandes dans les deux jours suivant le paiement, et c'est gratuit pour les membres.",
      }),
      row('spam', { text: `${'buy now cheap '.repeat(40)}.` }),
      row('empty', { text: '   ' }),
    ];
    const { kept: out, rejects, counts } = await runStep(qualityFilterStep({ preset: 'web' }), rows);
    assert.deepEqual(
      out.map((r) => [r.id, r.meta.lang]),
      [
        ['en', 'en'],
        ['zh', 'zh'],
      ],
    );
    const reasons = Object.fromEntries(rejects.map((r) => [(r.row as DataRow).id, r.reason]));
    assert.equal(reasons.fr, 'lang.not_allowed_other');
    assert.match(reasons.spam!, /^gopher_rep\./);
    assert.equal(reasons.empty, 'length.too_short_chars');
    assert.equal(counts['filter.kept'], 2);
    assert.equal(counts['lang.zh'], 1);
    assert.ok(rejects.every((r) => r.action === 'dropped' && r.step === 'filter' && r.detail?.threshold !== undefined));
  });

  it('chat preset is gentle with short turns but drops degenerate repetition', async () => {
    const rows = [
      row('ok', {
        messages: [
          { role: 'user', content: '好的' },
          { role: 'assistant', content: '好的，还有什么可以帮您？' },
        ],
      }),
      row('thanks', {
        messages: [
          { role: 'user', content: 'thanks' },
          { role: 'assistant', content: 'You are welcome!' },
        ],
      }),
      row('loop', { messages: [{ role: 'assistant', content: '哈'.repeat(120) }] }),
    ];
    const { kept: out, rejects } = await runStep(qualityFilterStep({ preset: 'chat' }), rows);
    assert.deepEqual(
      out.map((r) => r.id),
      ['ok', 'thanks'],
    );
    assert.equal(rejects[0]!.reason, 'zh_rep.top_2_gram');
  });

  it('user keys override the preset; false turns a group off; null turns one threshold off', () => {
    const cfg = resolveFiltersConfig({
      preset: 'web',
      length: { min_chars: 10 },
      zh: { c4: false, quality: { min_chars: null } },
      en: { repetition: { top_n_grams: [[2, 0.5]] } },
    });
    assert.equal(on(cfg.length).minChars, 10);
    assert.equal(on(cfg.length).maxChars, 100_000);
    assert.equal(cfg.zh.c4, false);
    assert.equal(on(cfg.zh.quality).minChars, null);
    assert.equal(on(cfg.zh.quality).minHanRatio, 0.3);
    assert.deepEqual(on(cfg.en.repetition).topNGrams, [[2, 0.5]]);
    const minimal = resolveFiltersConfig({ preset: 'minimal' });
    assert.equal(evaluateText('', minimal).drop?.reason, 'length.too_short_chars');
    assert.equal(evaluateText('anything at all', minimal).drop, undefined);
  });

  it('worker threads give the same rows, rejects and counts as inline, in order', async () => {
    const texts = [en, zh, `${en}\nPlease enable javascript to continue.`, 'x', `${'buy now cheap '.repeat(40)}.`];
    const rows = Array.from({ length: 600 }, (_, i) => row(`r${i}`, { text: texts[i % texts.length]! }));
    const a = await runStep(qualityFilterStep({ preset: 'web', workers: 0 }), rows);
    const b = await runStep(qualityFilterStep({ preset: 'web', workers: 2, parallel_min_chars: 1000 }), rows);
    assert.deepEqual(b.kept, a.kept);
    assert.deepEqual(b.rejects, a.rejects);
    assert.equal(b.counts['parallel.filter_workers'], 2);
    delete b.counts['parallel.filter_workers'];
    assert.deepEqual(b.counts, a.counts);
  });

  it('C4 line removal is logged as a change', async () => {
    const text = `${en}\nPlease enable javascript to continue.`;
    const { kept: out, rejects, counts } = await runStep(qualityFilterStep({ preset: 'web' }), [row('c', { text })]);
    assert.equal(out[0]!.text, en);
    assert.equal(rejects[0]!.action, 'changed');
    assert.equal(rejects[0]!.reason, 'c4.lines_removed');
    assert.equal(counts['filter.c4.lines_removed'], 1);
  });
});
