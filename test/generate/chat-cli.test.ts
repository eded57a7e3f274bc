// `loom chat` and `loom model score` as a user runs them: child processes, stdin piped, stdout checked against
// the library computing the same thing in-process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { scoreText } from '../../src/generate/score.ts';
import { createModelFolder } from '../../src/models/folder.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let work: string;
let dir: string;
let model: LocalChatModel;

function loom(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'loom-chat-'));
  dir = join(work, 'tiny');
  createModelFolder(dir, { preset: 'tiny', seed: 2, overrides: { initializer_range: 0.2 } });
  model = await LocalChatModel.fromFolder(dir, { threads: 1 });
});

after(async () => {
  await model.close();
  rmSync(work, { recursive: true, force: true });
});

test('loom chat: streamed replies with the chat template, /reset, /exit', async () => {
  const settings = { maxNewTokens: 8, temperature: 0 };
  const sys = { role: 'system' as const, content: 'Be nice.' };
  const r1 = await model.chat([sys, { role: 'user', content: 'Hello' }], settings);
  const r2 = await model.chat([sys, { role: 'user', content: 'What is up?' }], settings);
  const run = await loom(
    ['chat', dir, '--system', 'Be nice.', '--max-new-tokens', '8', '--temperature', '0', '--threads', '1'],
    'Hello\n/reset\nWhat is up?\n/exit\nnot read\n',
  );
  assert.equal(run.code, 0, run.stderr);
  const first = run.stdout.indexOf(`${r1.text}\n`);
  const reset = run.stdout.indexOf('(conversation cleared)');
  const second = run.stdout.indexOf(`${r2.text}\n`, reset);
  assert.ok(first >= 0 && reset > first && second > reset, run.stdout);
});

test('loom model score --json: per-token log-probs and perplexity', async () => {
  const text = 'Hello, how can I help you today?';
  const expected = await scoreText(model.lm, model.tokenizer, text);
  const run = await loom(['model', 'score', dir, '--text', text, '--json', '--threads', '1']);
  assert.equal(run.code, 0, run.stderr);
  const got = JSON.parse(run.stdout) as typeof expected;
  assert.equal(got.tokens.length, expected.tokens.length);
  assert.ok(Math.abs(got.perplexity! - expected.perplexity!) < 1e-3 * expected.perplexity!);
  assert.equal(got.tokens[0]!.logprob, null);
  const missing = await loom(['model', 'score', dir]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--text/);
});
