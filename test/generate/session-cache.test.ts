// The session cache (src/generate/session-cache.ts): a model folder's ONNX models are built once into a
// content-keyed folder and mapped from there. Every load must give PyTorch's logits (the fixtures' outputs.safetensors,
// written by tools/reference/llama_ref.py), whether it built the entry, reused it or rebuilt a damaged one; a changed
// weight file or config must miss; damaged entries must be detected and rebuilt, never used.
import assert from 'node:assert/strict';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../src/engine/index.ts';
import { CausalLM, type SessionLoad } from '../../src/generate/causal-lm.ts';
import { generateIds } from '../../src/generate/generate.ts';
import { readHfConfig } from '../../src/models/config.ts';
import { loadWeights, saveModelFolder } from '../../src/models/folder.ts';
import { SafetensorsReader } from '../../src/models/safetensors.ts';
import { maxAbsDiff } from '../models/compare.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');
const TOL = 1e-4;

let engine: Engine;
let work: string;
before(async () => {
  engine = await Engine.create({ threads: 2 });
  work = mkdtempSync(join(tmpdir(), 'loom-session-cache-'));
});
after(async () => {
  await engine.close();
  rmSync(work, { recursive: true, force: true });
});

function copyFixture(name: string): string {
  const dir = mkdtempSync(join(work, `${name}-`));
  for (const f of ['config.json', 'model.safetensors']) cpSync(join(FIXTURES, name, f), join(dir, f));
  return dir;
}

function reference(name: string): { ids: number[][]; logits: Float32Array } {
  const inputs = JSON.parse(readFileSync(join(FIXTURES, name, 'inputs.json'), 'utf8')) as { input_ids: number[][] };
  const ref = SafetensorsReader.open(join(FIXTURES, name, 'outputs.safetensors'));
  try {
    return { ids: inputs.input_ids, logits: ref.readFloat32('logits').data };
  } finally {
    ref.close();
  }
}

/** Loads the folder through the cache at `root`, checks its logits against PyTorch's, returns how it loaded. */
async function forwardChecked(dir: string, root: string | false, fixture: string): Promise<SessionLoad[]> {
  const { ids, logits } = reference(fixture);
  const lm = await CausalLM.fromFolder(dir, { engine, sessionCache: root });
  try {
    const out = await lm.forward(ids);
    const d = maxAbsDiff(out, logits);
    assert.ok(d <= TOL, `logits differ from PyTorch's by ${d}`);
    return [...lm.sessionLoads];
  } finally {
    await lm.close();
  }
}

function entries(root: string): string[] {
  return existsSync(root) ? readdirSync(root).filter((n) => !n.endsWith('.tmp')) : [];
}

describe('session cache', () => {
  for (const fixture of ['llama3', 'qwen2']) {
    test(`${fixture}: the first load builds the entry, the second reuses it; both give PyTorch's logits`, async () => {
      const dir = copyFixture(fixture);
      const root = join(work, `root-${fixture}`);
      assert.deepEqual(
        (await forwardChecked(dir, root, fixture)).map((l) => l.cache),
        ['miss'],
      );
      assert.equal(entries(root).length, 1);
      const second = await forwardChecked(dir, root, fixture);
      assert.deepEqual(
        second.map((l) => l.cache),
        ['hit'],
      );
      assert.equal(entries(root).length, 1, 'a hit adds no entry');
      assert.ok(second[0]!.path?.startsWith(root));
      // The entry holds the weights as external data: model.onnx is small, weights.bin holds every float.
      const entry = join(root, entries(root)[0]!);
      const weightBytes = [...loadWeights(dir).values()].reduce((a, t) => a + t.data.byteLength, 0);
      assert.ok(readFileSync(join(entry, 'weights.bin')).byteLength >= weightBytes);
    });
  }

  test('greedy generation through the cached decoder equals generation without the cache', async () => {
    const dir = copyFixture('smollm2');
    const root = join(work, 'root-generate');
    const run = async (cache: string | false): Promise<{ ids: number[]; loads: string[] }> => {
      const lm = await CausalLM.fromFolder(dir, { engine, sessionCache: cache });
      try {
        const r = await generateIds(lm, [[5, 17, 99, 3]], { maxNewTokens: 8, temperature: 0, eosIds: [] });
        return { ids: r[0]!.ids, loads: lm.sessionLoads.map((l) => l.cache) };
      } finally {
        await lm.close();
      }
    };
    const plain = await run(false);
    assert.deepEqual(plain.loads, ['off']);
    const cold = await run(root);
    const warm = await run(root);
    assert.deepEqual(cold.loads, ['miss']);
    assert.deepEqual(warm.loads, ['hit']);
    assert.deepEqual(cold.ids, plain.ids);
    assert.deepEqual(warm.ids, plain.ids);
  });

  test('a rewritten weight file misses the cache and its new values are used', async () => {
    const dir = copyFixture('llama3');
    const root = join(work, 'root-weights');
    await forwardChecked(dir, root, 'llama3');
    // Same shapes, different values: the stale entry must not be served.
    const cfg = readHfConfig(join(dir, 'config.json'));
    const w = loadWeights(dir);
    const before = reference('llama3');
    for (const t of w.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 0.5;
    saveModelFolder(dir, { config: cfg, weights: w });
    const lm = await CausalLM.fromFolder(dir, { engine, sessionCache: root });
    const out = await lm.forward(before.ids);
    assert.deepEqual(
      lm.sessionLoads.map((l) => l.cache),
      ['miss'],
    );
    await lm.close();
    const plain = await CausalLM.fromFolder(dir, { engine, sessionCache: false });
    const expected = await plain.forward(before.ids);
    await plain.close();
    assert.ok(maxAbsDiff(out, before.logits) > 1e-3, 'the halved weights must change the logits');
    assert.ok(maxAbsDiff(out, expected) <= 1e-6, 'the rebuilt entry holds the new weights');
    assert.equal(entries(root).length, 2);
  });

  test('a changed config.json misses the cache', async () => {
    const dir = copyFixture('llama3');
    const root = join(work, 'root-config');
    await forwardChecked(dir, root, 'llama3');
    const cfgPath = join(dir, 'config.json');
    const raw = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    raw.rms_norm_eps = 0.5; // a large eps changes every norm, so the logits move
    writeFileSync(cfgPath, JSON.stringify(raw));
    const lm = await CausalLM.fromFolder(dir, { engine, sessionCache: root });
    const out = await lm.forward(reference('llama3').ids);
    assert.deepEqual(
      lm.sessionLoads.map((l) => l.cache),
      ['miss'],
    );
    await lm.close();
    assert.ok(maxAbsDiff(out, reference('llama3').logits) > 1e-3, 'the new eps is in the graph');
  });

  const damage: [string, (entry: string) => void][] = [
    ['a truncated weights.bin', (e) => truncateSync(join(e, 'weights.bin'), 1000)],
    [
      'a same-size weights.bin whose first tensor was overwritten',
      (e) => {
        const fd = openSync(join(e, 'weights.bin'), 'r+');
        writeSync(fd, Buffer.alloc(64, 0x7f), 0, 64, 0);
        closeSync(fd);
      },
    ],
    ['a missing manifest', (e) => rmSync(join(e, 'manifest.json'))],
    ['a manifest that is not JSON', (e) => writeFileSync(join(e, 'manifest.json'), '{"format": 1, "key"')],
    [
      'a model.onnx cut short',
      (e) => {
        const p = join(e, 'model.onnx');
        writeFileSync(p, readFileSync(p).subarray(0, 100));
      },
    ],
    ['a missing weights.bin', (e) => rmSync(join(e, 'weights.bin'))],
  ];
  for (const [what, hurt] of damage) {
    test(`${what} is detected and rebuilt, not used`, async () => {
      const dir = copyFixture('qwen2');
      const root = mkdtempSync(join(work, 'root-damage-'));
      await forwardChecked(dir, root, 'qwen2');
      const [key] = entries(root);
      hurt(join(root, key!));
      assert.deepEqual(
        (await forwardChecked(dir, root, 'qwen2')).map((l) => l.cache),
        ['rebuilt'],
      );
      assert.deepEqual(entries(root), [key]);
      assert.deepEqual(
        (await forwardChecked(dir, root, 'qwen2')).map((l) => l.cache),
        ['hit'],
      );
    });
  }

  test('a build folder left by a killed process is not taken for an entry', async () => {
    const dir = copyFixture('llama3');
    const root = mkdtempSync(join(work, 'root-tmp-'));
    await forwardChecked(dir, root, 'llama3');
    const [key] = entries(root);
    const entry = join(root, key!);
    // What a crash between the build and the rename leaves: the entry's files under a .tmp name, the entry gone.
    cpSync(entry, `${entry}.999.dead.tmp`, { recursive: true });
    rmSync(entry, { recursive: true });
    assert.deepEqual(
      (await forwardChecked(dir, root, 'llama3')).map((l) => l.cache),
      ['miss'],
    );
  });

  test('an unwritable cache root falls back to loading in memory, with a warning', async () => {
    const dir = copyFixture('llama3');
    const root = join(work, 'not-a-folder');
    writeFileSync(root, 'a file where the cache folder should be');
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      assert.deepEqual(
        (await forwardChecked(dir, root, 'llama3')).map((l) => l.cache),
        ['off'],
      );
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.ok(
      warnings.some((w) => w.includes('session cache')),
      `warnings: ${warnings.join(' | ')}`,
    );
  });
});
