/**
 * A Llama-family model ready to run: ONNX Runtime sessions over the graphs of models/llama.ts.
 *
 * Two graphs, built lazily from the same weights:
 *   decoder  input_ids, attention_mask, position_ids, past_key_values.{i}.key|value -> logits (last position),
 *            present.{i}.key|value, next_token (in-graph greedy argmax of logits, [B,1] int64). One graph serves
 *            prefill (empty past) and decode (one token, growing past: the cache is sized to the request).
 *   full     input_ids, attention_mask, position_ids -> logits for every position (scoring, log-likelihoods).
 * Names follow Optimum / transformers.js, so the decoder is the graph `loom export` writes.
 *
 * API:
 *   CausalLM.fromFolder(dir, opts) / CausalLM.fromWeights(config, weights, opts)
 *   lm.emptyCache(batch)                      -> KvCache (past length 0)
 *   lm.step(ids, mask, cache)                 -> { logits [B,V] Float32Array, cache }   ids [B][T], mask [B][past+T];
 *                                                the cache passed in is consumed (its buffers move to the runtime)
 *   lm.decode(ids, mask, cache, { logits })   -> { next [B] greedy ids, logits?, cache }  the cache stays resident in
 *                                                the runtime's thread between calls; end with lm.releaseCache(cache)
 *   lm.forward(ids, mask?)                    -> logits [B,T,V] Float32Array (left padding via mask)
 *   lm.close()
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoomError } from '../core/errors.ts';
import { argMax, Engine, type HostTensor, type ResidentTensor, type Session, toOnnx } from '../engine/index.ts';
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
  /** Set by decode: the same values kept in the runtime's thread (tensors is then empty). */
  resident?: Record<string, ResidentTensor>;
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
    // Greedy decoding fetches this [B,1] id instead of B x vocab logits (ArgMax keeps the first maximum, as
    // sampling.ts argmax does).
    if (kind === 'decoder' && m.logits) m.graph.output('next_token', argMax(m.logits, -1));
    const bytes = parameterCount(this.config).total * 4;
    // transfer: the serialised model moves to the runtime's thread instead of being copied (one copy fewer).
    if (bytes < INLINE_LIMIT) {
      return this.engine.load(toOnnx(m.graph, { fused: this.opts.fused ?? true }), { transfer: true });
    }
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
    if (cache.resident) throw new LoomError('INTERNAL', 'step: this cache is resident; continue it with decode');
    const session = await this.decoderSession();
    // The cache's buffers move to the runtime instead of being copied: the cache passed in is consumed.
    const out = await session.run(this.decoderFeeds(ids, mask, cache) as Record<string, HostTensor>, undefined, {
      transfer: true,
    });
    const tensors: Record<string, HostTensor> = {};
    for (const name of this.kvNames()) {
      const t = out[name.replace('past_key_values.', 'present.')];
      if (!t) throw new LoomError('INTERNAL', `decoder did not return ${name.replace('past_key_values.', 'present.')}`);
      tensors[name] = t;
    }
    const logits = out.logits?.data;
    if (!(logits instanceof Float32Array)) throw new LoomError('INTERNAL', 'decoder returned no float logits');
    return { logits, cache: { pastLength: cache.pastLength + (ids[0]?.length ?? 0), tensors } };
  }

  /**
   * step with the KV cache kept in the runtime's thread: only ids, mask and the greedy next id (plus the logits
   * when asked for) cross per call. The cache passed in is consumed; release the last one with releaseCache.
   */
  async decode(
    ids: readonly (readonly number[])[],
    mask: readonly (readonly number[])[],
    cache: KvCache,
    opts: { logits?: boolean } = {},
  ): Promise<{ next: number[]; logits?: Float32Array; cache: KvCache }> {
    const session = await this.decoderSession();
    const keep = this.kvNames().map((n) => n.replace('past_key_values.', 'present.'));
    const fetches = [...keep, 'next_token', ...(opts.logits ? ['logits'] : [])];
    const feeds = this.decoderFeeds(ids, mask, cache);
    const { host, resident } = await session.runResident(feeds, fetches, keep);
    const kv: Record<string, ResidentTensor> = {};
    for (const name of this.kvNames()) {
      const t = resident[name.replace('past_key_values.', 'present.')];
      if (!t) throw new LoomError('INTERNAL', `decoder did not keep ${name.replace('past_key_values.', 'present.')}`);
      kv[name] = t;
    }
    const nt = host.next_token?.data;
    if (!(nt instanceof BigInt64Array)) throw new LoomError('INTERNAL', 'decoder returned no next_token');
    const logits = host.logits?.data;
    if (opts.logits && !(logits instanceof Float32Array)) {
      throw new LoomError('INTERNAL', 'decoder returned no float logits');
    }
    return {
      next: Array.from(nt, Number),
      logits: opts.logits ? (logits as Float32Array) : undefined,
      cache: { pastLength: cache.pastLength + (ids[0]?.length ?? 0), tensors: {}, resident: kv },
    };
  }

  /** Free a resident cache that will not be continued (decode consumes the ones it is given). */
  async releaseCache(cache: KvCache): Promise<void> {
    if (!cache.resident) return;
    const handles = Object.values(cache.resident);
    cache.resident = undefined;
    await this.engine.freeResident(handles);
  }

  private kvNames(): string[] {
    const names: string[] = [];
    for (let i = 0; i < this.config.numLayers; i++) {
      for (const kv of ['key', 'value']) names.push(`past_key_values.${i}.${kv}`);
    }
    return names;
  }

  private decoderFeeds(
    ids: readonly (readonly number[])[],
    mask: readonly (readonly number[])[],
    cache: KvCache,
  ): Record<string, HostTensor | ResidentTensor> {
    const B = ids.length;
    const T = ids[0]?.length ?? 0;
    const S = cache.pastLength + T;
    if (B === 0 || T === 0) throw new LoomError('RUNTIME', 'step: empty input');
    if (mask.length !== B || mask.some((r) => r.length !== S)) {
      throw new LoomError('RUNTIME', `step: attention mask must be [${B}, ${S}] (past ${cache.pastLength} + ${T} new)`);
    }
    checkIds(ids, this.config.vocabSize);
    const flatMask = mask.flat();
    const past = cache.resident ?? cache.tensors;
    if (cache.resident) cache.resident = undefined; // consumed by the run
    return {
      input_ids: int64(ids.flat(), [B, T]),
      attention_mask: int64(flatMask, [B, S]),
      position_ids: { dtype: 'int64', dims: [B, T], data: positionIdsFromMask(flatMask, B, T, cache.pastLength) },
      ...past,
    };
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
