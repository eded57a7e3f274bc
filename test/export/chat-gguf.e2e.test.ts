// `loom chat <file.gguf>` on a GGUF export: the CLI in a subprocess hands the file to llama.cpp (node-llama-cpp, a
// real peer), which renders the file's own chat template and must give the source model's greedy reply. A CLI
// subprocess plus a peer runtime, so it lives in the e2e tier beside the other peer-loading tests.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportArtefact } from '../../src/export/export.ts';
import { LocalChatModel } from '../../src/generate/chat-model.ts';
import { makeTinyModel, QWEN2 } from './tiny-models.ts';

const work = mkdtempSync(join(tmpdir(), 'loom-export-chat-gguf-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('`loom chat <file.gguf>` runs the GGUF export through llama.cpp with its own chat template', async () => {
  const src = makeTinyModel(work, 'gguf-chat', QWEN2[1]);
  const r = exportArtefact({
    input: src,
    format: 'gguf',
    dtype: 'fp32',
    out: join(work, 'gguf-chat-out'),
    skipCheck: true,
  });
  const a = await LocalChatModel.fromFolder(src, { threads: 1 });
  const want = await a.chat([{ role: 'user', content: 'hello there' }], { maxNewTokens: 8, temperature: 0 });
  await a.close();
  const cli = execFileSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'chat', r.artefact, '--max-new-tokens', '8', '--temperature', '0'],
    { input: 'hello there\n', encoding: 'utf8', timeout: 120_000 },
  );
  // llama.cpp renders the same chat template from the file and decodes F32 weights: the source's greedy reply.
  // A reply cut by --max-new-tokens inside a UTF-8 character ends in U+FFFD for Loom; llama.cpp holds the partial
  // bytes back, so the comparison drops that one trailing replacement character.
  const cut = (t: string) => t.trim().replace(/\uFFFD$/, '');
  assert.equal(cut(cli.split('\n(stopped at')[0]!), cut(want.text));
  assert.throws(
    () =>
      execFileSync(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'chat', r.artefact, '--template', 'chatml'],
        {
          input: '',
          encoding: 'utf8',
          stdio: 'pipe',
          timeout: 60_000,
        },
      ),
    /--template does not apply to a GGUF file/,
  );
});
