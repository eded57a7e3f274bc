/**
 * A Llama-family model ready to run: ONNX Runtime sessions over the graphs of models/llama.ts.
 *
 * Two graphs, built lazily from the same weights:
 *   decoder  input_ids, attention_mask, position_ids, past_key_values.{i}.key|value -> logits (last position),
 *            present.{i}.key|value. One graph serves prefill (empty past) and decode (one token, growing past).
 *   full     input_ids, attention_mask, position_ids -> logits for every position (scoring, log-likelihoods).
 * Names follow Optimum / transformers.js, so the decoder is the graph `loom export` writes.
 *
 * API:
 *   CausalLM.fromFolder(dir, opts) / CausalLM.fromWeights(config, weights, opts)
 *   lm.emptyCache(batch)                      -> KvCache (past length 0)
 *   lm.step(ids, mask, cache)                 -> { logits [B,V] Float32Array, cache }   ids [B][T], mask [B][past+T];
 *                                                the cache passed in is consumed (its buffers move to the runtime)
 *   lm.forward(ids, mask?)                    -> logits [B,T,V] Float32Array (left padding via mask)
 *   lm.close()
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoomError } from '../core/errors.ts';
import { Engine, type HostTensor, type Session, toOnnx } from '../engine/index.ts';
import { type LlamaConfig, parameterCount } from '../models/config.ts';
import { loadWeights, openModelFolder, validateWeights } from '../models/folder.ts';
import { buildLlama, type LlamaGraphOptions, positionIdsFromMask, type WeightSource } from '../models/llama.ts';

export interface CausalLMOptions {
  /** Share an engine (e.g. one per process); otherwise the model owns one and closes it. */
  engine?: Engine;
  threads?: number;
  device?: 'cpu' | 'cuda';
  /** Let the ONNX emitter swap composites for fused contrib ops (inference only; parity tested). Default true. */
  fused?: boolean;
  /** Extra graph options (e.g. a LoRA linear hook for serving an adapter unmerged). */
  graph?: Pick<LlamaGraphOptions, 'linear' | 'ropeTableSize'>;
}

/** Per-layer keys and values, [B, kvHeads, past, headDim] each, in the decoder's feed names. */
export interface KvCache {
  pastLength: number;
  tensors: Record<string, HostTensor>;
}

// ORT refuses protobufs over 2 GB; larger models go through external data in a temporary folder.
const INLINE_LIMIT = 1.8e9;

export class CausalLM {
  private decoder?: Promise<Session>;
  private full?: Promise<Session>;
  private closed = false;

  private constructor(
    readonly config: LlamaConfig,
    /** Weights are fetched per graph build, so a model loaded from a folder keeps no JS copy once loaded. */
    private readonly weights: () => WeightSource,
    private readonly engine: Engine,
    private readonly ownsEngine: boolean,
    private readonly opts: CausalLMOptions,
  ) {}

  static async fromWeights(config: LlamaConfig, weights: WeightSource, opts: CausalLMOptions = {}): Promise<CausalLM> {
    const engine = opts.engine ?? (await Engine.create({ threads: opts.threads, device: opts.device }));
    return new CausalLM(config, () => weights, engine, !opts.engine, opts);
  }

  static async fromFolder(dir: string, opts: CausalLMOptions = {}): Promise<CausalLM> {
    const folder = openModelFolder(dir);
    const config = folder.config;
    try {
      validateWeights(folder);
    } finally {
      folder.close();
    }
    const engine = opts.engine ?? (await Engine.create({ threads: opts.threads, device: opts.device }));
    return new CausalLM(config, () => loadWeights(dir), engine, !opts.engine, opts);
  }

  private async load(kind: 'decoder' | 'full'): Promise<Session> {
    if (this.closed) throw new LoomError('RUNTIME', 'model is closed');
    const m = buildLlama(this.config, this.weights(), {
      ...this.opts.graph,
      kvCache: kind === 'decoder',
      logits: kind === 'decoder' ? 'last' : 'all',
    });
    const bytes = parameterCount(this.config).total * 4;
    if (bytes < INLINE_LIMIT) return this.engine.load(toOnnx(m.graph, { fused: this.opts.fused ?? true }));
    const dir = mkdtempSync(join(tmpdir(), 'loom-model-'));
    try {
      const model = toOnnx(m.graph, { fused: this.opts.fused ?? true, externalData: { dir, file: 'weights.bin' } });
      writeFileSync(join(dir, 'model.onnx'), model);
      return await this.engine.load(join(dir, 'model.onnx'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private decoderSession(): Promise<Session> {
    this.decoder ??= this.load('decoder');
    return this.decoder;
  }

  private fullSession(): Promise<Session> {
    this.full ??= this.load('full');
    return this.full;
  }

  emptyCache(batch: number): KvCache {
    const { numKvHeads, headDim } = this.config;
    const tensors: Record<string, HostTensor> = {};
    for (let i = 0; i < this.config.numLayers; i++) {
      for (const kv of ['key', 'value']) {
        tensors[`past_key_values.${i}.${kv}`] = {
          dtype: 'float32',
          dims: [batch, numKvHeads, 0, headDim],
          data: new Float32Array(0),
        };
      }
    }
    return { pastLength: 0, tensors };
  }

  /**
   * Runs T new tokens per row after the cached ones. `mask` covers past + new tokens (0 = left padding).
   * Returns the logits of each row's last position and the grown cache.
   */
  async step(
    ids: readonly (readonly number[])[],
    mask: readonly (readonly number[])[],
    cache: KvCache,
  ): Promise<{
    logits: Float32Array;
    cache: KvCache;
  }> {
    const B = ids.length;
    const T = ids[0]?.length ?? 0;
    const S = cache.pastLength + T;
    if (B === 0 || T === 0) throw new LoomError('RUNTIME', 'step: empty input');
    if (mask.length !== B || mask.some((r) => r.length !== S)) {
      throw new LoomError('RUNTIME', `step: attention mask must be [${B}, ${S}] (past ${cache.pastLength} + ${T} new)`);
    }
    checkIds(ids, this.config.vocabSize);
    const flatMask = mask.flat();
    const session = await this.decoderSession();
    // The cache's buffers move to the runtime instead of being copied: the cache passed in is consumed.
    const out = await session.run(
      {
        input_ids: int64(ids.flat(), [B, T]),
        attention_mask: int64(flatMask, [B, S]),
        position_ids: { dtype: 'int64', dims: [B, T], data: positionIdsFromMask(flatMask, B, T, cache.pastLength) },
        ...cache.tensors,
      },
      undefined,
      { transfer: true },
    );
    const tensors: Record<string, HostTensor> = {};
    for (let i = 0; i < this.config.numLayers; i++) {
      for (const kv of ['key', 'value']) {
        const t = out[`present.${i}.${kv}`];
        if (!t) throw new LoomError('INTERNAL', `decoder did not return present.${i}.${kv}`);
        tensors[`past_key_values.${i}.${kv}`] = t;
      }
    }
    const logits = out.logits?.data;
    if (!(logits instanceof Float32Array)) throw new LoomError('INTERNAL', 'decoder returned no float logits');
    return { logits, cache: { pastLength: S, tensors } };
  }

  /** Logits for every position [B,T,V] (row-major). Rows may be left-padded via mask. */
  async forward(ids: readonly (readonly number[])[], mask?: readonly (readonly number[])[]): Promise<Float32Array> {
    const B = ids.length;
    const T = ids[0]?.length ?? 0;
    checkIds(ids, this.config.vocabSize);
    const flatMask = mask ? mask.flat() : new Array<number>(B * T).fill(1);
    const session = await this.fullSession();
    const out = await session.run(
      {
        input_ids: int64(ids.flat(), [B, T]),
        attention_mask: int64(flatMask, [B, T]),
        position_ids: { dtype: 'int64', dims: [B, T], data: positionIdsFromMask(flatMask, B, T) },
      },
      ['logits'],
    );
    const logits = out.logits?.data;
    if (!(logits instanceof Float32Array)) throw new LoomError('INTERNAL', 'model returned no float logits');
    return logits;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of [this.decoder, this.full]) {
      if (s) await (await s.catch(() => undefined))?.release();
    }
    if (this.ownsEngine) await this.engine.close();
  }
}

/** Token ids outside the embedding would fail deep inside ORT's Gather; say what is wrong instead. */
function checkIds(ids: readonly (readonly number[])[], vocabSize: number): void {
  for (const row of ids) {
    for (const id of row) {
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
        throw new LoomError(
          'INPUT_MALFORMED',
          `token id ${id} is outside the model's vocabulary (0..${vocabSize - 1})`,
          {
            field: 'vocab_size',
            hint: "the tokenizer does not match the model: check tokenizer.json against config.json's vocab_size",
          },
        );
      }
    }
  }
}

function int64(values: readonly number[], dims: number[]): HostTensor {
  return { dtype: 'int64', dims, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}
