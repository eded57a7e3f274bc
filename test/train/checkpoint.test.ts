import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { openExportSource } from '../../src/export/source.ts';
import { loadWeights } from '../../src/models/folder.ts';
import { runTraining } from '../../src/train/trainer.ts';
import { cfg, tinyProject } from './helpers.ts';

const { dir } = tinyProject();
after(() => rmSync(dir, { recursive: true, force: true }));

const ck = (out: string, step: number) => join(dir, out, 'checkpoints', `step-${String(step).padStart(6, '0')}`);
const train = (over: Record<string, unknown>, resume = false, log?: (l: string) => void) =>
  runTraining({
    config: cfg({ max_steps: 6, save_steps: 3, learning_rate: 1e-2, ...over }),
    baseDir: dir,
    quiet: true,
    threads: 1,
    probe: 'quick',
    resume,
    log,
    merge: (over.finetuning_type ?? 'lora') === 'lora',
  });

/** Flips bytes in the middle of a file in place (same size: only the hash can tell). */
function damage(path: string): void {
  const at = Math.floor(statSync(path).size * 0.75);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([0x7f, 0xc0, 0x00, 0x00]), 0, 4, at); // a NaN, little-endian float32
  closeSync(fd);
}

function isCorrupt(file: string) {
  return (e: unknown) => {
    assert.ok(e instanceof LoomError, String(e));
    assert.equal(e.code, 'CHECKPOINT_CORRUPT');
    assert.equal(e.file, file);
    assert.match(e.message, /sha256|bytes/);
    assert.match(e.hint ?? '', /earlier checkpoint.*step-000003/);
    return true;
  };
}

test('a checkpoint manifest holds the sha256 and size of every file (checked with node:crypto directly)', async () => {
  await train({ output_dir: 'm' });
  const m = JSON.parse(readFileSync(join(ck('m', 6), 'manifest.json'), 'utf8'));
  assert.deepEqual(Object.keys(m.files).sort(), ['optimizer.safetensors', 'state.json', 'trainable.safetensors']);
  for (const [f, e] of Object.entries(m.files as Record<string, { sha256: string; bytes: number }>)) {
    const bytes = readFileSync(join(ck('m', 6), f));
    assert.equal(e.sha256, createHash('sha256').update(bytes).digest('hex'), f);
    assert.equal(e.bytes, bytes.length, f);
  }
});

test('overwritten checkpoint bytes: --resume refuses naming the file (not a NaN later)', async () => {
  await train({ output_dir: 'c', max_steps: 4 }); // checkpoints at steps 3 and 4
  for (const f of ['trainable.safetensors', 'optimizer.safetensors', 'state.json']) {
    cpSync(join(dir, 'c'), join(dir, `c-${f}`), { recursive: true });
    const target = join(ck(`c-${f}`, 4), f);
    if (f === 'state.json') {
      const s = readFileSync(target, 'utf8').replace('"step": 4', '"step": 5');
      assert.notEqual(s, readFileSync(target, 'utf8'));
      writeFileSync(target, s);
    } else damage(target);
    await assert.rejects(train({ output_dir: `c-${f}`, max_steps: 4 }, true), isCorrupt(target));
  }
});

test('a damaged checkpoint is refused on load too (export / generate / chat read it through openExportSource)', async () => {
  cpSync(join(dir, 'c'), join(dir, 'c-load'), { recursive: true });
  const target = join(ck('c-load', 4), 'trainable.safetensors');
  damage(target);
  assert.throws(() => openExportSource(ck('c-load', 4)), isCorrupt(target));
  // the earlier one the hint points to still loads
  assert.ok(openExportSource(ck('c-load', 3)).weights.size > 0);
});

test('a checkpoint loads as a model: the LoRA merge equals the run’s merged folder, full weights equal model/', async () => {
  const lora = openExportSource(ck('m', 6));
  const merged = loadWeights(join(dir, 'm', 'merged'));
  for (const [n, t] of merged) assert.deepEqual(lora.weights.get(n)!.data, t.data, n);
  await train({ output_dir: 'f', finetuning_type: 'full', learning_rate: 3e-3 });
  const full = openExportSource(ck('f', 6));
  const model = loadWeights(join(dir, 'f', 'model'));
  for (const [n, t] of model) assert.deepEqual(full.weights.get(n)!.data, t.data, n);
  assert.equal(full.tokenizerDir, join(dir, 'model'));
});

test('a checkpoint written before manifests existed resumes with a warning', async () => {
  cpSync(join(dir, 'c'), join(dir, 'c-old'), { recursive: true });
  for (const s of [3, 4]) rmSync(join(ck('c-old', s), 'manifest.json'));
  const lines: string[] = [];
  const r = await train({ output_dir: 'c-old', max_steps: 4 }, true, (l) => lines.push(l));
  assert.equal(r.steps, 4);
  assert.ok(
    lines.some((l) => /warning: checkpoint .*step-000004 has no manifest\.json/.test(l)),
    lines.join('\n'),
  );
});
