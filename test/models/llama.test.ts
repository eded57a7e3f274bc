// Parity of the Llama-family graph with the float64 PyTorch reference (tools/reference/llama_ref.py):
// logits, loss and d loss / d weight for every weight, on committed fixtures of each architecture variant.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine, grad, type HostTensor, toOnnx } from '../../src/engine/index.ts';
import { readHfConfig, ropeCosSin } from '../../src/models/config.ts';
import { loadWeights } from '../../src/models/folder.ts';
import { buildLlama, type LlamaGraphOptions, positionIdsFromMask } from '../../src/models/llama.ts';
import { SafetensorsReader } from '../../src/models/safetensors.ts';
import { maxAbsDiff } from './compare.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');
const VARIANTS = ['llama', 'llama3', 'qwen2', 'qwen3', 'mistral', 'smollm2'];
const TOL = 1e-4;

interface Inputs {
  input_ids: number[][];
  labels: number[][];
  padded: { input_ids: number[][]; attention_mask: number[][]; position_ids: number[][] };
}

const i64 = (rows: number[][]): HostTensor => ({
  dtype: 'int64',
  dims: [rows.length, rows[0]?.length ?? 0],
  data: BigInt64Array.from(rows.flat(), (v) => BigInt(v)),
});

let engine: Engine;
before(async () => {
  engine = await Engine.create({ threads: 2 });
});
after(async () => {
  await engine.close();
});

describe('llama graph matches the PyTorch reference', () => {
  for (const variant of VARIANTS) {
    test(variant, async () => {
      const dir = join(FIXTURES, variant);
      const cfg = readHfConfig(join(dir, 'config.json'));
      const weights = loadWeights(dir);
      const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as Inputs;
      const ref = SafetensorsReader.open(join(dir, 'outputs.safetensors'));
      const refGrads = SafetensorsReader.open(join(dir, 'grads.safetensors'));

      const m = buildLlama(cfg, weights, { trainable: () => true, loss: true });
      assert.ok(m.loss);
      const wrt = m.trainable.map((n) => m.params.get(n)!);
      const grads = grad(m.loss, wrt);
      m.trainable.forEach((n, i) => {
        m.graph.output(`grad.${n}`, grads[i]!);
      });
      assert.deepEqual(new Set(m.trainable), new Set(refGrads.names()));
      const session = await engine.load(toOnnx(m.graph));

      const [B, T] = [inputs.input_ids.length, inputs.input_ids[0]!.length];
      const ones = Array.from({ length: B }, () => Array<number>(T).fill(1));
      const pos = Array.from({ length: B }, () => Array.from({ length: T }, (_, t) => t));
      // Trainable weights are graph inputs: feed their values.
      const feedsW: Record<string, HostTensor> = {};
      for (const n of m.trainable) feedsW[n] = weights.get(n)!;
      const out = await session.run({
        ...feedsW,
        input_ids: i64(inputs.input_ids),
        labels: i64(inputs.labels),
        attention_mask: i64(ones),
        position_ids: i64(pos),
      });
      const logits = out.logits!.data as Float32Array;
      const refLogits = ref.readFloat32('logits').data;
      assert.ok(maxAbsDiff(logits, refLogits) <= TOL, `logits diff ${maxAbsDiff(logits, refLogits)}`);
      const loss = (out.loss!.data as Float32Array)[0]!;
      const refLoss = ref.readFloat32('loss').data[0]!;
      assert.ok(Math.abs(loss - refLoss) <= TOL, `loss ${loss} vs ${refLoss}`);
      for (const n of m.trainable) {
        const d = maxAbsDiff(out[`grad.${n}`]!.data as Float32Array, refGrads.readFloat32(n).data);
        assert.ok(d <= TOL, `grad ${n}: max abs diff ${d}`);
      }

      // Left padding: attention_mask hides the pads, position_ids restart at the first real token.
      const p = inputs.padded;
      const noLabels = p.input_ids.map((r) => r.map(() => -100));
      const pout = await session.run(
        {
          ...feedsW,
          input_ids: i64(p.input_ids),
          labels: i64(noLabels),
          attention_mask: i64(p.attention_mask),
          position_ids: i64(p.position_ids),
        },
        ['logits'],
      );
      const V = cfg.vocabSize;
      const mask = p.attention_mask.flat();
      const d = maxAbsDiff(
        pout.logits!.data as Float32Array,
        ref.readFloat32('padded_logits').data,
        (i) => mask[Math.floor(i / V)] === 1,
      );
      assert.ok(d <= TOL, `padded logits diff ${d}`);
      const ids = positionIdsFromMask(mask, B, T);
      assert.deepEqual(Array.from(ids, Number), p.position_ids.flat());
      ref.close();
      refGrads.close();
      await session.release();
    });
  }
});

/** Loss and every weight's gradient of the full-training graph built with `extra` options, on a fixture. */
async function lossAndGrads(variant: string, extra: Partial<LlamaGraphOptions>) {
  const dir = join(FIXTURES, variant);
  const cfg = readHfConfig(join(dir, 'config.json'));
  const weights = loadWeights(dir);
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as Inputs;
  const m = buildLlama(cfg, weights, { trainable: () => true, loss: true, logits: 'none', ...extra });
  const grads = grad(
    m.loss!,
    m.trainable.map((n) => m.params.get(n)!),
  );
  m.trainable.forEach((n, i) => {
    m.graph.output(`grad.${n}`, grads[i]!);
  });
  const session = await engine.load(toOnnx(m.graph));
  const [B, T] = [inputs.input_ids.length, inputs.input_ids[0]!.length];
  const feeds: Record<string, HostTensor> = {
    input_ids: i64(inputs.input_ids),
    labels: i64(inputs.labels),
    attention_mask: i64(Array.from({ length: B }, () => Array<number>(T).fill(1))),
    position_ids: i64(Array.from({ length: B }, () => Array.from({ length: T }, (_, t) => t))),
  };
  for (const n of m.trainable) feeds[n] = weights.get(n)!;
  const out = await session.run(feeds);
  await session.release();
  const g = new Map(m.trainable.map((n) => [n, out[`grad.${n}`]!.data as Float32Array]));
  return { loss: (out.loss!.data as Float32Array)[0]!, grads: g, graph: m.graph, dir };
}

function assertMatchesReference(r: Awaited<ReturnType<typeof lossAndGrads>>) {
  const ref = SafetensorsReader.open(join(r.dir, 'outputs.safetensors'));
  const refGrads = SafetensorsReader.open(join(r.dir, 'grads.safetensors'));
  const refLoss = ref.readFloat32('loss').data[0]!;
  assert.ok(Math.abs(r.loss - refLoss) <= TOL, `loss ${r.loss} vs ${refLoss}`);
  for (const [n, d] of r.grads) {
    const diff = maxAbsDiff(d, refGrads.readFloat32(n).data);
    assert.ok(diff <= TOL, `grad ${n}: max abs diff ${diff}`);
  }
  ref.close();
  refGrads.close();
}

describe('chunked loss (engine chunkedCrossEntropy) matches the PyTorch reference loss and gradients', () => {
  for (const variant of VARIANTS) {
    for (const eagerGrad of [true, false]) {
      test(`${variant}, ${eagerGrad ? 'eager' : 'recomputed'} gradients`, async () => {
        const r = await lossAndGrads(variant, { lossChunks: { chunks: 3, eagerGrad } });
        // no [B·T, vocab] logits: every LogSoftmax reads one piece of rows (recomputed once more in the backward)
        assert.equal(r.graph.nodes.filter((n) => n.op === 'LogSoftmax').length, eagerGrad ? 3 : 6);
        assertMatchesReference(r);
      });
    }
  }
});

describe('activation checkpointing (checkpointLayers) gives the same loss and gradients', () => {
  for (const variant of VARIANTS) {
    test(variant, async () => {
      const plain = await lossAndGrads(variant, { lossChunks: { chunks: 2, eagerGrad: true } });
      const ckpt = await lossAndGrads(variant, { lossChunks: { chunks: 2, eagerGrad: true }, checkpointLayers: true });
      // every layer's forward MatMuls run twice (forward, then the recomputation in the backward pass)
      const count = (r: typeof plain) => r.graph.nodes.filter((n) => n.op === 'Softmax').length;
      assert.equal(count(ckpt), 2 * count(plain));
      // same forward nodes; ORT may fuse the two graphs differently, so not always the same last bit
      assert.ok(Math.abs(ckpt.loss - plain.loss) <= 1e-6 * Math.abs(plain.loss), `${ckpt.loss} vs ${plain.loss}`);
      for (const [n, d] of plain.grads) {
        const c = ckpt.grads.get(n)!;
        let worst = 0;
        let scale = 0;
        for (let i = 0; i < d.length; i++) {
          worst = Math.max(worst, Math.abs(c[i]! - d[i]!));
          scale = Math.max(scale, Math.abs(d[i]!));
        }
        // 1e-6 relative, with a 1e-7 floor: the k_proj bias gradient is exactly zero in exact arithmetic (softmax
        // ignores a per-query shift), so its float32 value is rounding noise of either graph
        assert.ok(
          worst <= Math.max(1e-6 * scale, 1e-7),
          `grad ${n}: checkpointed differs by ${worst} (scale ${scale})`,
        );
      }
      assertMatchesReference(ckpt);
    });
  }
});

test('without a position_ids input, positions default to 0..T-1', async () => {
  const dir = join(FIXTURES, 'llama3');
  const cfg = readHfConfig(join(dir, 'config.json'));
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as Inputs;
  const m = buildLlama(cfg, loadWeights(dir), { positionIds: false, attentionMask: 'none' });
  assert.deepEqual(Object.keys(m.inputs), ['input_ids']);
  const session = await engine.load(toOnnx(m.graph));
  const out = await session.run({ input_ids: i64(inputs.input_ids) });
  const ref = SafetensorsReader.open(join(dir, 'outputs.safetensors'));
  const d = maxAbsDiff(out.logits!.data as Float32Array, ref.readFloat32('logits').data);
  ref.close();
  await session.release();
  assert.ok(d <= TOL, `logits diff ${d}`);
});

test('pre-shifted labels and per-token loss weights give the reference loss', async () => {
  const dir = join(FIXTURES, 'qwen3');
  const cfg = readHfConfig(join(dir, 'config.json'));
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as Inputs;
  const m = buildLlama(cfg, loadWeights(dir), { loss: true, labelsShifted: true, lossWeights: true, logits: 'none' });
  const session = await engine.load(toOnnx(m.graph));
  const shifted = inputs.labels.map((r) => [...r.slice(1), -100]);
  const T = shifted[0]!.length;
  const pos = inputs.input_ids.map(() => Array.from({ length: T }, (_, t) => t));
  const weights = shifted.map((r) => r.map(() => 1));
  // Weight 0 on a token counts like -100: drop one label by weight instead of by ignore index.
  weights[1]![2] = 0;
  const dropped = shifted.map((r) => [...r]);
  dropped[1]![2] = -100;
  const feeds = (labels: number[][], w: number[][]): Record<string, HostTensor> => ({
    input_ids: i64(inputs.input_ids),
    attention_mask: i64(pos.map((r) => r.map(() => 1))),
    position_ids: i64(pos),
    labels: i64(labels),
    loss_weights: { dtype: 'float32', dims: [w.length, T], data: Float32Array.from(w.flat()) },
  });
  const ref = SafetensorsReader.open(join(dir, 'outputs.safetensors'));
  const refLoss = ref.readFloat32('loss').data[0]!;
  ref.close();
  const ones = shifted.map((r) => r.map(() => 1));
  const a = (await session.run(feeds(shifted, ones))).loss!.data[0] as number;
  assert.ok(Math.abs(a - refLoss) <= TOL, `${a} vs ${refLoss}`);
  const b = (await session.run(feeds(shifted, weights))).loss!.data[0] as number;
  const c = (await session.run(feeds(dropped, ones))).loss!.data[0] as number;
  assert.ok(Math.abs(b - c) <= 1e-6 && Math.abs(b - a) > 1e-4, `${b} vs ${c}`);
  await session.release();
});

test('packed sequences with a block-diagonal attention_bias match the reference per sequence', async () => {
  const dir = join(FIXTURES, 'smollm2');
  const cfg = readHfConfig(join(dir, 'config.json'));
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as Inputs;
  const m = buildLlama(cfg, loadWeights(dir), { attentionMask: 'additive' });
  const session = await engine.load(toOnnx(m.graph));
  const [a, b] = [3, 5];
  const ids = [[...inputs.input_ids[0]!.slice(0, a), ...inputs.input_ids[1]!.slice(0, b)]];
  const pos = [[...Array.from({ length: a }, (_, t) => t), ...Array.from({ length: b }, (_, t) => t)]];
  const T = a + b;
  const bias = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) if (i < a !== j < a) bias[i * T + j] = -1e9;
  const out = await session.run({
    input_ids: i64(ids),
    position_ids: i64(pos),
    attention_bias: { dtype: 'float32', dims: [1, 1, T, T], data: bias },
  });
  const ref = SafetensorsReader.open(join(dir, 'outputs.safetensors'));
  const refLogits = ref.readFloat32('logits').data;
  ref.close();
  await session.release();
  const V = cfg.vocabSize;
  const got = out.logits!.data as Float32Array;
  const refRow = (row: number, t: number): Float32Array => refLogits.subarray((row * 8 + t) * V, (row * 8 + t + 1) * V);
  for (let t = 0; t < T; t++) {
    const expected = t < a ? refRow(0, t) : refRow(1, t - a);
    const d = maxAbsDiff(got.subarray(t * V, (t + 1) * V), expected);
    assert.ok(d <= TOL, `packed position ${t}: ${d}`);
  }
});

test('rope tables equal HF float32 rope at long positions (llama2, smollm2, qwen, llama3.2 scaling)', () => {
  const dir = join(FIXTURES, 'rope');
  const spec = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as {
    positions: number[];
    cases: Record<string, { head_dim: number; rope_theta: number; rope_scaling?: Record<string, number | string> }>;
  };
  const ref = SafetensorsReader.open(join(dir, 'rope.safetensors'));
  const maxPos = Math.max(...spec.positions) + 1;
  for (const [name, c] of Object.entries(spec.cases)) {
    const rs = c.rope_scaling;
    const tables = ropeCosSin(
      {
        headDim: c.head_dim,
        ropeTheta: c.rope_theta,
        ropeScaling: rs
          ? {
              type: 'llama3',
              factor: rs.factor as number,
              lowFreqFactor: rs.low_freq_factor as number,
              highFreqFactor: rs.high_freq_factor as number,
              originalMaxPositionEmbeddings: rs.original_max_position_embeddings as number,
            }
          : null,
      },
      maxPos,
    );
    for (const which of ['cos', 'sin'] as const) {
      const want = ref.readFloat32(`${name}.${which}`).data;
      const d = c.head_dim;
      let worst = 0;
      spec.positions.forEach((p, r) => {
        for (let j = 0; j < d; j++) worst = Math.max(worst, Math.abs(tables[which][p * d + j]! - want[r * d + j]!));
      });
      assert.ok(worst <= 1e-5, `${name} ${which}: max abs diff ${worst}`);
    }
  }
  ref.close();
});
