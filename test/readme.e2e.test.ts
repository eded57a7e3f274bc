/**
 * The README's "The stages by hand" block, extracted and run top to bottom as written (end to end: a few minutes),
 * so the README cannot rot. It writes under out/customer-service/ like a reader's run would; the background
 * stand-in endpoint is killed with the block's process group whatever happens.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

function stagesBlock(): string {
  const md = readFileSync('README.md', 'utf8');
  const at = md.indexOf('## The stages by hand');
  assert.ok(at >= 0, 'README.md has no "The stages by hand" section');
  const m = /```sh\n([\s\S]*?)```/.exec(md.slice(at));
  assert.ok(m, 'the section has no sh block');
  return m[1]!;
}

test('README "The stages by hand" block has no placeholders', () => {
  const block = stagesBlock();
  assert.doesNotMatch(block, /<[a-z][^>]*>/i, 'placeholder like <run> in the block');
});

test('README "The stages by hand" runs top to bottom as written', { timeout: 15 * 60_000 }, async () => {
  const block = stagesBlock();
  // eval.yaml names the stand-in at 127.0.0.1:8765: a server already there would be evaluated instead of ours.
  const busy = await new Promise<boolean>((res) => {
    const s = createServer();
    s.once('error', () => res(true));
    s.listen(8765, '127.0.0.1', () => s.close(() => res(false)));
  });
  assert.equal(busy, false, 'port 127.0.0.1:8765 is taken: stop the other stand-in (the README block starts its own)');
  const env = { ...process.env, LOOM_REGISTRY: join(mkdtempSync(join(tmpdir(), 'loom-readme-')), 'registry.db') };
  const child = spawn('bash', ['-e', '-c', block], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '';
  child.stdout.on('data', (d: Buffer) => {
    log += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    log += d.toString();
  });
  // 'exit', not 'close': a server left in the background would hold the pipes open and 'close' would never come.
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    // the group is already gone: the block's own `kill` ended the stand-in
  }
  child.stdout.destroy();
  child.stderr.destroy();
  assert.equal(code, 0, `README block failed (exit ${code}):\n${log.slice(-4000)}`);
  assert.match(log, /BLEU/);
});
