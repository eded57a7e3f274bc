import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataRow } from '../../src/core/types.ts';
import { createNormalizer, normalizeStep } from '../../src/data/normalize.ts';
import { runStep } from '../../src/data/step-harness.ts';

const row = (id: string, fields: Partial<DataRow>): DataRow => ({
  id,
  meta: {},
  source: { file: 'f', line: 1 },
  ...fields,
});

describe('normalize', () => {
  it('NFKC and full-width → half-width for ASCII', async () => {
    const n = await createNormalizer();
    assert.deepEqual(n('ＡＢＣ１２３　ｘ'), { text: 'ABC123 x', kinds: ['fullwidth'] });
    assert.deepEqual(n('ﬁle ① ㎏'), { text: 'file 1 kg', kinds: ['nfkc'] });
    assert.deepEqual(n('wait…'), { text: 'wait...', kinds: ['nfkc'] });
  });

  it('keeps Chinese punctuation next to CJK text unless cjkPunct is ascii', async () => {
    const keep = await createNormalizer();
    assert.equal(keep('你好，世界！（测试）等等……').text, '你好，世界！（测试）等等……');
    assert.equal(keep('Hello，world！').text, 'Hello,world!');
    assert.equal(keep('退货：ＯＫ？').text, '退货：OK？');
    const ascii = await createNormalizer({ cjkPunct: 'ascii' });
    assert.equal(ascii('你好，世界！（测试）').text, '你好,世界!(测试)');
  });

  it('removes control, zero-width and bidi characters, naming each kind', async () => {
    const n = await createNormalizer();
    assert.deepEqual(n('a\u200bb\u202ec\u0007d\u00ade\ufefff'), {
      text: 'abcdef',
      kinds: ['controls', 'zero_width', 'bidi'],
    });
  });

  it('collapses whitespace but keeps line breaks and one blank line between paragraphs', async () => {
    const n = await createNormalizer();
    assert.deepEqual(n('  a  \t b\r\n\n\n\nc  \n d\u3000e '), {
      text: 'a b\n\nc\nd e',
      kinds: ['fullwidth', 'whitespace'],
    });
  });

  it('decodes HTML entities, strips known tags, leaves placeholder-like tokens alone', async () => {
    const n = await createNormalizer();
    assert.equal(
      n('Tom &amp; Jerry&#39;s <b>show</b><br>next &#x4e2d;&lt;3 <PHONE> <script>x()</script>end').text,
      "Tom & Jerry's show\nnext 中<3 <PHONE> end",
    );
    assert.equal(n('if a<b and c>d &unknown; ok').text, 'if a<b and c>d &unknown; ok');
  });

  it('converts Traditional to Simplified when asked (opencc-js)', async () => {
    const n = await createNormalizer({ t2s: 't' });
    assert.deepEqual(n('這是繁體中文，沒問題！'), { text: '这是繁体中文，没问题！', kinds: ['t2s'] });
    const off = await createNormalizer();
    assert.equal(off('這是繁體').text, '這是繁體');
  });

  it('step: rewrites text and message contents, counts kinds, logs changed rows (all, a sample, none)', async () => {
    const rows = [
      row('a', { text: 'ＡＢＣ  x' }),
      row('b', { messages: [{ role: 'user', content: 'hi\u200b there' }], label: 'ＬＡＢＥＬ' }),
      row('c', { text: 'unchanged' }),
      row('d', { text: 'ＸＹＺ' }),
    ];
    const {
      kept: out,
      rejects,
      counts,
    } = await runStep(normalizeStep({ log_changes: 'sample', sample_size: 1 }), rows);
    assert.deepEqual(
      out.map((r) => r.text ?? r.messages?.[0]?.content),
      ['ABC x', 'hi there', 'unchanged', 'XYZ'],
    );
    assert.equal(out[1]!.label, 'ＬＡＢＥＬ');
    assert.equal(out[2], rows[2]);
    assert.deepEqual(counts, {
      'normalize.changed_rows': 3,
      'normalize.fullwidth': 2,
      'normalize.whitespace': 1,
      'normalize.zero_width': 1,
    });
    // Sample of 1 per kind: row a (fullwidth, whitespace), row b (zero_width); row d's fullwidth is not logged.
    assert.deepEqual(
      rejects.map((r) => [r.row && (r.row as DataRow).id, r.action, r.reason]),
      [
        ['a', 'changed', 'normalized: fullwidth,whitespace'],
        ['b', 'changed', 'normalized: zero_width'],
      ],
    );
    assert.equal((rejects[0]!.row as DataRow).text, 'ＡＢＣ  x');
    // The default logs every changed row (a, b, d), so nothing changes silently.
    const all = await runStep(normalizeStep({}), rows);
    assert.deepEqual(
      all.rejects.map((r) => (r.row as DataRow).id),
      ['a', 'b', 'd'],
    );
    const none = await runStep(normalizeStep({ log_changes: 'none' }), rows);
    assert.equal(none.rejects.length, 0);
    const disabled = await runStep(normalizeStep({ enabled: false }), rows);
    assert.deepEqual(disabled.kept, rows);
  });
});
