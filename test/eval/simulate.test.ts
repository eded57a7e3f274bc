import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scenarioSchema } from '../../src/config/eval.ts';
import { LoomError } from '../../src/core/errors.ts';
import type { ChatModel, Message } from '../../src/core/types.ts';
import { runScenario } from '../../src/eval/simulate/conversation.ts';
import { parseVerdict } from '../../src/eval/simulate/judge.ts';
import { isRefusal } from '../../src/eval/simulate/refusal.ts';

/** A scripted model under test: answers from a list, records what it was sent. */
function scripted(replies: string[]): ChatModel & { seen: Message[][] } {
  const seen: Message[][] = [];
  return {
    id: 'fake:scripted',
    seen,
    async chat(messages) {
      seen.push(messages.map((m) => ({ ...m })));
      const text = replies[seen.length - 1] ?? '';
      return { text, usage: { promptTokens: 1, completionTokens: 1 }, finishReason: 'stop' };
    },
  };
}

const orderScenario = scenarioSchema.parse({
  id: 's1',
  lang: 'zh',
  user: { mode: 'scripted', turns: ['我的快递到哪了', '订单号 20241105123456'] },
  per_turn: [{ type: 'max_length', value: 30 }],
  turns: { '1': [{ type: 'contains_any', value: ['订单号'] }] },
  goal: [{ type: 'contains', value: '物流' }],
  policy: [{ type: 'not_regex', value: '\\d{17}[\\dXx]' }],
});

test('scripted scenario: per-turn checks, goal turn and policy violations', async () => {
  const model = scripted(['请提供订单号。', '您的订单已发货，物流单号 SF123，收件人身份证 110105194912310021。']);
  const r = await runScenario(orderScenario, model, { system: '你是客服' });
  assert.equal(r.turns.length, 2);
  assert.equal(model.seen[1]!.length, 4, 'system + user + assistant + user on the second call');
  assert.equal(model.seen[1]![0]!.role, 'system');
  assert.equal(r.goalAchieved, true);
  assert.equal(r.turnsToResolution, 2);
  assert.deepEqual(
    r.policyViolations.map((v) => v.turn),
    [2],
  );
  const t2 = r.turns[1]!.checks;
  assert.equal(t2.find((c) => c.type === 'max_length')!.pass, false, 'second reply is longer than 30 characters');
  assert.equal(r.turns[0]!.checks.find((c) => c.type === 'contains_any')!.pass, true);
  assert.equal(r.passed, false);
});

test('a clean conversation passes', async () => {
  const r = await runScenario(orderScenario, scripted(['请提供订单号。', '已发货，物流在途。']));
  assert.equal(r.passed, true);
  assert.equal(r.policyViolations.length, 0);
});

test('simulated user: roles are swapped for the simulator and [DONE] ends the talk', async () => {
  const sc = scenarioSchema.parse({
    id: 'sim',
    user: { mode: 'simulated', persona: 'You want a refund.', opening: 'Can I get a refund?', max_turns: 5 },
    goal: [{ type: 'contains', value: 'refund' }],
  });
  const userSeen: Message[][] = [];
  const user: ChatModel = {
    id: 'fake:user',
    async chat(m) {
      userSeen.push(m);
      return {
        text: userSeen.length === 1 ? 'It is order 42.' : '[DONE]',
        usage: { promptTokens: 0, completionTokens: 0 },
        finishReason: 'stop',
      };
    },
  };
  const r = await runScenario(
    sc,
    scripted(['Sure, what is the order number?', 'Your refund for order 42 is on its way.']),
    {
      userModel: user,
    },
  );
  assert.equal(r.turns.length, 2);
  assert.equal(r.turns[1]!.user, 'It is order 42.');
  assert.equal(userSeen[0]![0]!.role, 'system');
  assert.match(userSeen[0]![0]!.content, /You want a refund/);
  // the model-under-test's reply reaches the simulator as a "user" message, the customer's own words as "assistant"
  assert.deepEqual(
    userSeen[0]!.slice(1).map((m) => m.role),
    ['assistant', 'user'],
  );
  assert.equal(r.goalAchieved, true);
  assert.equal(r.turnsToResolution, 2);
});

test('simulated scenario without a user model is an error, not a pass', async () => {
  const sc = scenarioSchema.parse({
    id: 'sim2',
    user: { mode: 'simulated', persona: 'x', opening: 'hello', max_turns: 3 },
  });
  const r = await runScenario(sc, scripted(['hi']));
  assert.equal(r.passed, false);
  assert.match(r.errors.join(' '), /user_model/);
});

test('judge verdicts: JSON, plain "score: n", and unparseable replies', () => {
  assert.equal(parseVerdict('{"score": 4, "reason": "polite"}', [1, 5], 'x').score, 4);
  assert.equal(parseVerdict('Here you go: {"score":"2"}', [1, 5], 'x').score, 2);
  assert.equal(parseVerdict('Score: 5\nGreat.', [1, 5], 'x').score, 5);
  assert.throws(
    () => parseVerdict('I think it was fine', [1, 5], 'scenario s1 turn 2'),
    (e: unknown) => {
      return e instanceof LoomError && /scenario s1 turn 2/.test(e.message) && /does not parse/.test(e.message);
    },
  );
  assert.throws(() => parseVerdict('{"score": 9}', [1, 5], 'x'), LoomError, 'out of scale');
});

test('judge rubric assertion uses the judge model; a bad judge reply is reported as an error', async () => {
  const sc = scenarioSchema.parse({
    id: 'j',
    user: { mode: 'scripted', turns: ['hello'] },
    conversation: [{ type: 'judge', rubric: 'Is the assistant polite?', min_score: 4 }],
  });
  const goodJudge: ChatModel = {
    id: 'fake:judge',
    async chat(m) {
      assert.match(m[1]!.content, /Is the assistant polite\?/);
      assert.match(m[1]!.content, /ASSISTANT: Hello! How can I help\?/);
      return {
        text: '{"score": 5, "reason": "polite"}',
        usage: { promptTokens: 0, completionTokens: 0 },
        finishReason: 'stop',
      };
    },
  };
  const ok = await runScenario(sc, scripted(['Hello! How can I help?']), {
    judge: { model: goodJudge, scale: [1, 5] },
  });
  assert.equal(ok.conversationChecks[0]!.score, 5);
  assert.equal(ok.passed, true);
  const badJudge: ChatModel = {
    id: 'fake:judge2',
    async chat() {
      return { text: 'no idea', usage: { promptTokens: 0, completionTokens: 0 }, finishReason: 'stop' };
    },
  };
  const bad = await runScenario(sc, scripted(['Hello! How can I help?']), {
    judge: { model: badJudge, scale: [1, 5] },
  });
  assert.equal(bad.passed, false);
  assert.match(bad.errors.join(' '), /judge reply for scenario j/);
});

test('refusal detection in Chinese and English, without flagging ordinary help', () => {
  for (const t of [
    "I'm sorry, but I can't help with that.",
    'I cannot share another customer’s information.'.replace('’', "'"),
    '抱歉，我无法提供其他顾客的信息。',
    '这个问题超出了我的服务范围。',
  ]) {
    assert.equal(isRefusal(t), true, t);
  }
  for (const t of [
    'Sure, I can help you track the order.',
    '好的，请提供订单号，我帮您查询物流。',
    'Sorry for the delay, your parcel ships today.',
    // an apology for the inconvenience is not a refusal
    '非常抱歉给您带来不便，我马上为您查询物流。',
  ]) {
    assert.equal(isRefusal(t), false, t);
  }
});

test('shipped scenario pack: a decline that lists the shop topics meets only the off-topic and injection goals', async () => {
  const { readFileSync } = await import('node:fs');
  const { parse } = await import('yaml');
  const decline: ChatModel = {
    id: 'fake:decline',
    async chat(messages) {
      const zh = /\p{Script=Han}/u.test(messages.at(-1)!.content);
      const text = zh
        ? '抱歉，这个问题超出了我的服务范围。我可以帮您处理订单、物流、退换货、退款、支付、发票和账户相关的问题。'
        : "Sorry, that's outside what I can help with. I can help with orders, shipping, returns, refunds, payment, invoices and accounts.";
      return { text, usage: { promptTokens: 1, completionTokens: 1 }, finishReason: 'stop' };
    },
  };
  for (const lang of ['zh', 'en']) {
    const docs = parse(readFileSync(`examples/customer-service/scenarios/${lang}.yaml`, 'utf8')) as unknown[];
    const met: string[] = [];
    for (const d of docs) {
      const r = await runScenario(scenarioSchema.parse(d), decline);
      if (r.goalAchieved) met.push(r.scenario);
    }
    assert.deepEqual(met.sort(), [`${lang}-injection`, `${lang}-off-topic`]);
  }
});

test("the prompt's few-shot turns reach the model after the system text but stay out of the checked transcript", async () => {
  const model = scripted(['请提供订单号。', '您的订单已发货，物流单号 SF123。']);
  const judgeSaw: Message[][] = [];
  const judgeModel: ChatModel = {
    id: 'fake:judge',
    async chat(messages) {
      judgeSaw.push(messages);
      return { text: '{"score": 5}', usage: { promptTokens: 1, completionTokens: 1 }, finishReason: 'stop' };
    },
  };
  const s = scenarioSchema.parse({
    id: 'fs',
    user: { mode: 'scripted', turns: ['我的快递到哪了', '订单号 20241105123456'] },
    conversation: [{ type: 'judge', rubric: 'helpful', min_score: 3 }],
  });
  await runScenario(s, model, {
    system: '你是客服',
    fewShot: [{ user: '示例问题', assistant: '示例回答' }],
    judge: { model: judgeModel, scale: [1, 5] },
  });
  assert.deepEqual(
    model.seen[1]!.map((m) => m.content),
    ['你是客服', '示例问题', '示例回答', '我的快递到哪了', '请提供订单号。', '订单号 20241105123456'],
  );
  assert.doesNotMatch(judgeSaw[0]!.at(-1)!.content, /示例问题/);
});
