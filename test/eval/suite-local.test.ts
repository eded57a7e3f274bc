import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { runSuite } from '../../src/eval/suite/runner.ts';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { createModelFolder } from '../../src/models/folder.ts';

test('suite on a local engine model: generation, log-likelihood classification and multiple choice', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-suite-local-'));
  const model = join(dir, 'model');
  createModelFolder(model, { preset: 'tiny', seed: 3 });
  writeFileSync(
    join(dir, 'gen.jsonl'),
    ['hello there', '你好'].map((q) => JSON.stringify({ question: q, answer: 'hi' })).join('\n'),
  );
  const cls = [
    ['refund please', 'refund'],
    ['where is my parcel', 'shipping'],
    ['money back', 'refund'],
  ];
  writeFileSync(join(dir, 'cls.jsonl'), cls.map(([text, label]) => JSON.stringify({ text, label })).join('\n'));
  writeFileSync(join(dir, 'mc.jsonl'), JSON.stringify({ question: '2+2?', choices: ['3', '4', '5'], answer: 1 }));
  const suite = join(dir, 'suite.yaml');
  writeFileSync(
    suite,
    stringify({
      name: 'local',
      models: [{ id: 'tiny', kind: 'local', path: 'model' }],
      generation: { max_new_tokens: 6, temperature: 0, seed: 0 },
      tasks: [
        { id: 'gen', kind: 'generation', dataset: 'gen.jsonl', metrics: ['chrf'] },
        { id: 'cls', kind: 'classification', dataset: 'cls.jsonl', labels: ['refund', 'shipping'], mode: 'loglik' },
        { id: 'mc', kind: 'multiple_choice', dataset: 'mc.jsonl' },
      ],
      out_dir: 'out',
      cache: 'cache.sqlite',
      bootstrap: { samples: 50, seed: 1 },
    }),
  );
  const { result } = await runSuite(suite, { parallel: 1 });
  for (const t of result.tasks) assert.deepEqual(t.errors, [], `${t.task} ran without errors`);
  const gen = result.tasks.find((t) => t.task === 'gen')!;
  assert.equal(gen.examples.length, 2);
  assert.ok(gen.summary.chrf!.score >= 0 && gen.summary.chrf!.score <= 100);

  // The log-likelihood classifier must pick, for each row, the label the model itself scores highest.
  const lm = await LocalChatModel.fromFolder(model);
  try {
    const c = result.tasks.find((t) => t.task === 'cls')!;
    assert.equal(c.scoring, 'loglik');
    for (const e of c.examples) {
      const row = cls.find(([text]) => text === e.input)!;
      const prompt = [
        {
          role: 'user' as const,
          content: `Classify the text into exactly one of these labels: refund, shipping. Answer with the label only.\n\n${row[0]}`,
        },
      ];
      const ll = await lm.logLikelihood(prompt, ['refund', 'shipping']);
      assert.equal(e.hypothesis, ll[0]! >= ll[1]! ? 'refund' : 'shipping');
    }
    const mc = result.tasks.find((t) => t.task === 'mc')!;
    assert.equal(mc.scoring, 'loglik');
    assert.ok(['A', 'B', 'C'].includes(mc.examples[0]!.hypothesis));
  } finally {
    await lm.close();
  }
});
