import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cosine, features, RetrievalModel } from '../../src/eval/baselines/retrieval.ts';
import { isRefusal } from '../../src/eval/simulate/refusal.ts';
import { OpenAICompatibleModel } from '../../src/providers/openai-compatible.ts';
import { serveChatModel } from '../../src/serve/openai-server.ts';

test('features: Han characters and bigrams, Latin words; cosine of identical texts is 1', () => {
  const f = features('退款 refund 退款');
  assert.equal(f.get('c:退'), 2);
  assert.equal(f.get('b:退款'), 2);
  assert.equal(f.get('b:款退'), 1, 'bigrams run across spaces between Han characters');
  assert.equal(f.get('w:refund'), 1);
  assert.ok(Math.abs(cosine(f, features('退款 refund 退款')) - 1) < 1e-12);
  assert.equal(cosine(features('abc'), features('退款')), 0);
});

test('retrieval stand-in served as an OpenAI-compatible endpoint answers paraphrases and declines off-topic', async () => {
  const model = new RetrievalModel([
    { question: '怎么申请退款？', answer: '在订单页点击“申请退款”即可。' },
    { question: 'How long does shipping take?', answer: 'Shipping takes three to five days.' },
  ]);
  const { app, url } = await serveChatModel(model, { modelName: 'faq' });
  try {
    const client = new OpenAICompatibleModel({ baseURL: url, model: 'faq', maxRetries: 0 });
    const zh = await client.chat([{ role: 'user', content: '请问如何申请退款' }]);
    assert.equal(zh.text, '在订单页点击“申请退款”即可。');
    const en = await client.chat([{ role: 'user', content: 'how long will shipping take' }]);
    assert.equal(en.text, 'Shipping takes three to five days.');
    const off = await client.chat([{ role: 'user', content: '给我写一首关于月亮的诗' }]);
    assert.equal(isRefusal(off.text), true);
    const res = await fetch(`${url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [] }),
    });
    assert.equal(res.status, 400, 'schema rejects an empty conversation');
  } finally {
    await app.close();
  }
});
