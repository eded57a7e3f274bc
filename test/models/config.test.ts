import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import {
  memoryEstimate,
  parameterCount,
  parameterShapes,
  parseHfConfig,
  presetConfig,
  presetNames,
  ropeCosSin,
  ropeInvFreq,
  toHfConfig,
} from '../../src/models/config.ts';

// config.json of published checkpoints (the keys that matter, as on the hub).
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  use_sliding_window: false,
  tie_word_embeddings: true,
  vocab_size: 151936,
  bos_token_id: 151643,
  eos_token_id: 151643,
  torch_dtype: 'bfloat16',
};

const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  attention_bias: false,
  mlp_bias: false,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 128256,
};

test('Qwen2.5-0.5B: qkv bias, tied, sliding window off; 494,032,768 parameters (published count)', () => {
  const c = parseHfConfig(QWEN25_05B);
  assert.equal(c.architecture, 'qwen2');
  assert.equal(c.headDim, 64);
  assert.equal(c.qkvBias, true);
  assert.equal(c.oBias, false);
  assert.equal(c.slidingWindow, null);
  assert.deepEqual(c.eosTokenId, [151643]);
  const names = parameterShapes(c).map((p) => p.name);
  assert.ok(names.includes('model.layers.0.self_attn.q_proj.bias'));
  assert.ok(!names.includes('model.layers.0.self_attn.o_proj.bias'));
  assert.ok(!names.includes('lm_head.weight'));
  assert.equal(parameterCount(c).total, 494032768);
});

test('Llama 3.2 1B: llama3 rope scaling, list of eos ids; 1,235,814,400 parameters', () => {
  const c = parseHfConfig(LLAMA32_1B);
  assert.deepEqual(c.ropeScaling, {
    type: 'llama3',
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  assert.deepEqual(c.eosTokenId, [128001, 128008, 128009]);
  assert.equal(parameterCount(c).total, 1235814400);
});

test('published parameter counts of SmolLM2-135M, TinyLlama-1.1B and Mistral-7B', () => {
  assert.equal(parameterCount(presetConfig('smollm2-135m')).total, 134515008);
  assert.equal(parameterCount(presetConfig('tinyllama-1.1b')).total, 1100048384);
  assert.equal(parameterCount(presetConfig('mistral-7b')).total, 7241732096);
  assert.equal(presetConfig('mistral-7b').slidingWindow, 4096);
});

test('Qwen3: head_dim independent of hidden/heads, q_norm/k_norm per head, no qkv bias', () => {
  const c = presetConfig('qwen3-0.6b');
  assert.equal(c.numHeads * c.headDim, 2048);
  assert.notEqual(c.numHeads * c.headDim, c.hiddenSize);
  const shapes = new Map(parameterShapes(c).map((p) => [p.name, p.shape]));
  assert.deepEqual(shapes.get('model.layers.0.self_attn.q_proj.weight'), [2048, 1024]);
  assert.deepEqual(shapes.get('model.layers.0.self_attn.k_proj.weight'), [1024, 1024]);
  assert.deepEqual(shapes.get('model.layers.0.self_attn.o_proj.weight'), [1024, 2048]);
  assert.deepEqual(shapes.get('model.layers.0.self_attn.q_norm.weight'), [128]);
  assert.deepEqual(shapes.get('model.layers.27.self_attn.k_norm.weight'), [128]);
  assert.equal(shapes.has('model.layers.0.self_attn.q_proj.bias'), false);
  // Model card: 0.44B non-embedding parameters.
  assert.equal(Math.round(parameterCount(c).nonEmbedding / 1e7) / 100, 0.44);
  // transformers' Qwen3Attention: attention_bias puts a bias on q, k, v and o (Qwen2 has q/k/v bias and none on o).
  const biased = new Set(
    parameterShapes(presetConfig('qwen3-tiny', { attention_bias: true }))
      .filter((p) => p.name.startsWith('model.layers.0.self_attn.') && p.name.endsWith('.bias'))
      .map((p) => p.name.split('.')[4]),
  );
  assert.deepEqual([...biased].sort(), ['k_proj', 'o_proj', 'q_proj', 'v_proj']);
  const qwen2 = parameterShapes(presetConfig('qwen2-tiny')).filter((p) => p.name.endsWith('o_proj.bias'));
  assert.equal(qwen2.length, 0);
});

test('untied models list lm_head.weight last; names follow HF', () => {
  const c = presetConfig('llama3-tiny');
  const specs = parameterShapes(c);
  assert.equal(specs[0]?.name, 'model.embed_tokens.weight');
  assert.equal(specs.at(-1)?.name, 'lm_head.weight');
  assert.deepEqual(specs.at(-1)?.shape, [512, 64]);
  assert.ok(specs.some((s) => s.name === 'model.layers.1.mlp.down_proj.weight'));
  assert.equal(specs.filter((s) => s.name.startsWith('model.layers.0.')).length, 9);
});

test('toHfConfig round-trips through parseHfConfig for every preset', () => {
  for (const name of presetNames()) {
    const c = presetConfig(name);
    const again = parseHfConfig(JSON.parse(JSON.stringify(toHfConfig(c))));
    const { hf: _a, ...x } = c;
    const { hf: _b, ...y } = again;
    assert.deepEqual(y, x, name);
  }
});

test('invalid configs are MODEL_INVALID errors naming the key', () => {
  const bad = { ...QWEN25_05B } as Record<string, unknown>;
  delete bad.hidden_size;
  assert.throws(
    () => parseHfConfig(bad, 'x/config.json'),
    (e: unknown) =>
      e instanceof LoomError && e.code === 'MODEL_INVALID' && e.field === 'hidden_size' && e.file === 'x/config.json',
  );
  assert.throws(
    () => parseHfConfig({ ...QWEN25_05B, model_type: 'gpt_neox' }),
    (e: unknown) => e instanceof LoomError && e.field === 'model_type',
  );
  assert.throws(
    () => parseHfConfig({ ...QWEN25_05B, num_key_value_heads: 3 }),
    (e: unknown) => e instanceof LoomError && e.field === 'num_key_value_heads',
  );
});

test('memory estimate: weights and KV cache from the shape', () => {
  const c = presetConfig('smollm2-135m');
  const m = memoryEstimate(c, { dtype: 'float16', kvDtype: 'float16', contextLength: 1000 });
  assert.equal(m.weightsBytes, 134515008 * 2);
  // K and V, 30 layers, 3 kv heads x 64, 2 bytes
  assert.equal(m.kvBytesPerToken, 2 * 30 * 3 * 64 * 2);
  assert.equal(m.kvCacheBytes, m.kvBytesPerToken * 1000);
});

// Golden values computed separately in Python from the formula in transformers' modeling_rope_utils
// (default: 1/base^(2i/d); llama3: keep wavelen < old/high, divide wavelen > old/low by factor, blend between).
test('rope inv_freq, default', () => {
  const want = [
    1.0, 0.31622776601683794, 0.1, 0.03162277660168379, 0.01, 0.003162277660168379, 0.001, 0.00031622776601683794,
  ];
  const got = ropeInvFreq({ headDim: 16, ropeTheta: 10000, ropeScaling: null });
  want.forEach((w, i) => {
    // float32 values: within one float32 rounding (2^-24 relative) per operation of the float64 formula
    assert.ok(Math.abs((got[i] as number) - w) <= 4e-7 * w, `i=${i}: ${got[i]} vs ${w}`);
  });
});

test('rope inv_freq, llama3 scaling (Llama 3.2: factor 32, low 1, high 4, original 8192)', () => {
  const want = [
    1.0, 0.6636012376960885, 0.44036660267178046, 0.2922278225730151, 0.19392274474868576, 0.12868737343265052,
    0.08539710028576561, 0.056669621445291044, 0.03760603093086393, 0.024955408670558694, 0.016560440080994446,
    0.010989528534539826, 0.0072926647372171085, 0.004839421345719893, 0.0032114459947525913, 0.001290547928209264,
    0.00042955679655936815, 9.70828780262767e-5, 1.9461638184831125e-5, 1.291476718704739e-5, 8.570255489881478e-6,
    5.687232150457046e-6, 3.7740542941082826e-6, 2.5044671007024935e-6, 1.661967467795309e-6, 1.102883668639601e-6,
    7.318749675440419e-7, 4.856731343010108e-7, 3.2229329303788936e-7, 2.138742281610915e-7, 1.4192720251899592e-7,
    9.418306725434909e-8,
  ];
  const c = presetConfig('llama3.2-1b');
  const got = ropeInvFreq(c);
  assert.equal(got.length, 32);
  want.forEach((w, i) => {
    assert.ok(Math.abs((got[i] as number) - w) <= 1e-6 * w, `i=${i}: ${got[i]} vs ${w}`);
  });
});

test('rope cos/sin tables: rotate_half layout and exact angles', () => {
  const { cos, sin } = ropeCosSin({ headDim: 4, ropeTheta: 10000, ropeScaling: null }, [0, 1, 2]);
  // inv_freq = [1, 0.01]; row t = [cos(t), cos(0.01 t), cos(t), cos(0.01 t)]
  assert.deepEqual([...cos.slice(0, 4)], [1, 1, 1, 1]);
  assert.deepEqual([...sin.slice(0, 4)], [0, 0, 0, 0]);
  assert.ok(Math.abs((cos[8] as number) - Math.cos(2)) < 1e-7);
  assert.ok(Math.abs((sin[9] as number) - Math.sin(0.02)) < 1e-7);
  assert.equal(cos[8], cos[10]);
  assert.equal(sin[9], sin[11]);
});

test('rope cos/sin agree with float32 PyTorch tables computed as transformers does (fixtures/rope)', () => {
  const ref = JSON.parse(readFileSync(new URL('../fixtures/rope/rope.json', import.meta.url), 'utf8')) as {
    positions: number[];
    cases: { name: string; head_dim: number; theta: number; scaling: number[] | null; cos: number[]; sin: number[] }[];
  };
  for (const c of ref.cases) {
    const s = c.scaling;
    const cfg = {
      headDim: c.head_dim,
      ropeTheta: c.theta,
      ropeScaling: s
        ? {
            type: 'llama3' as const,
            factor: s[0] as number,
            lowFreqFactor: s[1] as number,
            highFreqFactor: s[2] as number,
            originalMaxPositionEmbeddings: s[3] as number,
          }
        : null,
    };
    const { cos, sin } = ropeCosSin(cfg, ref.positions);
    let worst = 0;
    for (let i = 0; i < cos.length; i++) {
      worst = Math.max(
        worst,
        Math.abs((cos[i] as number) - (c.cos[i] as number)),
        Math.abs((sin[i] as number) - (c.sin[i] as number)),
      );
    }
    // Angles reach 3e4 rad at position 30000, where one float32 ulp of inv_freq would show as ~1e-3:
    // agreement to ~1e-6 means inv_freq and the angles are the same float32 values as PyTorch's.
    assert.ok(worst < 2e-6, `${c.name}: max |diff| ${worst}`);
  }
});
