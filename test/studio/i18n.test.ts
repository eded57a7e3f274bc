import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DICTIONARIES, LANGS, parseLang, translate } from '../../src/studio/i18n.ts';

test('every language has exactly the same keys, none empty', () => {
  const en = Object.keys(DICTIONARIES.en).sort();
  for (const l of LANGS) {
    assert.deepEqual(Object.keys(DICTIONARIES[l]).sort(), en, l);
    for (const [k, v] of Object.entries(DICTIONARIES[l])) assert.ok(v.trim().length > 0, `${l} ${k}`);
  }
});

test('the navigation names are exactly the ones issue #16 fixes', () => {
  const nav = (l: (typeof LANGS)[number]) =>
    (['datasets', 'training', 'evaluations', 'playground', 'monitor'] as const).map((p) => translate(l, `nav.${p}`));
  assert.deepEqual(nav('en'), ['Datasets', 'Training', 'Evaluations', 'Playground', 'Monitor']);
  assert.deepEqual(nav('zh-CN'), ['数据集', '训练', '评估', '对话', '监控']);
});

test('placeholders are filled in both languages and the Chinese text differs from the English', () => {
  const v = { datasets: 1, runs: 2, evals: 3, models: 4 };
  assert.equal(translate('en', 'projects.counts', v), 'Found: 1 datasets, 2 training runs, 3 evaluations, 4 models');
  assert.match(translate('zh-CN', 'projects.counts', v), /1 个数据集，2 次训练，3 次评估，4 个模型/);
  const same = Object.keys(DICTIONARIES.en).filter(
    (k) =>
      DICTIONARIES.en[k as keyof typeof DICTIONARIES.en] === DICTIONARIES['zh-CN'][k as keyof typeof DICTIONARIES.en],
  );
  assert.deepEqual(same, [], 'untranslated strings');
  assert.equal(parseLang('zh-CN'), 'zh-CN');
  assert.equal(parseLang('fr'), 'en');
});
