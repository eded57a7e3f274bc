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
 * An ONNX export folder (`loom export --format onnx`: config.json + onnx/model*.onnx, no safetensors) runs as it is:
 * its one graph (logits for every position, KV cache, no next_token) serves step, decode and forward; greedy ids are
 * the first maximum of the last position's logits, computed here (same rule as the in-graph ArgMax).
 *
 * API:
 *   CausalLM.load(dir, opts)                  a model folder, or an ONNX export folder (detected; opts.file picks the
 *                                                onnx/ file, default the export's own dtype, else model.onnx)
 *   CausalLM.fromFolder(dir, opts) / CausalLM.fromWeights(config, weights, opts) / CausalLM.fromOnnxExport(dir, opts)
 *   isOnnxExport(dir)                         -> boolean
 *   lm.emptyCache(batch)                      -> KvCache (past length 0)
 *   lm.step(ids, mask, cache)                 -> { logits [B,V] Float32Array, cache }   ids [B][T], mask [B][past+T];
 *                                                the cache passed in is consumed (its buffers move to the runtime)
 *   lm.decode(ids, mask, cache, { logits })   -> { next [B] greedy ids, logits?, cache }  the cache stays resident in
 *                                                the runtime's thread between calls; end with lm.releaseCache(cache)
 *   lm.composeCaches(parts, picks, length)  -> KvCache   rows of resident caches gathered into one batch (generate/batch.ts)
 *   lm.forward(ids, mask?)                    -> logits [B,T,V] Float32Array (left padding via mask)
 *   lm.close()
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoomError } from '../core/errors.ts';
import {
  argMax,
  Engine,
  type Graph,
  type HostTensor,
  type ResidentTensor,
  type Session,
  toOnnx,
} from '../engine/index.ts';
import { type LlamaConfig, parameterCount, readHfConfig } from '../models/config.ts';
import { loadWeights, openModelFolder, validateWeights } from '../models/folder.ts';
import { buildLlama, type LlamaGraphOptions, positionIdsFromMask, type WeightSource } from '../models/llama.ts';
import { type CachedModel, cachedModel, sessionCacheRoot } from './session-cache.ts';

export interface CausalLMOptions {
  /** Share an engine (e.g. one per process); otherwise the model owns one and closes it. */
  engine?: Engine;
  threads?: number;
  device?: 'cpu' | 'cuda';
  /** Let the ONNX emitter swap composites for fused contrib ops (inference only; parity tested). Default true. */
  fused?: boolean;
  /** Extra graph options (e.g. a LoRA linear hook for serving an adapter unmerged). */
  graph?: Pick<LlamaGraphOptions, 'linear' | 'ropeTableSize'>;
  /** ONNX export only: the file inside onnx/ to run (e.g. model_quantized.onnx). */
  file?: string;
  /**
   * The decoder session's threads spin between ops instead of sleeping (engine LoadOptions.spinning). Opt-in:
   * batch-1 decode is hundreds of small parallel MatMuls, and waking a sleeping thread for each cost ~40 % of the
   * MatMul chain in a profile (bench/generate/decode-profile.ts). An idle thread spins DECODE_SPIN_US before it
   * sleeps. Off by default because the end-to-end gain is not yet measured idle, and on a loaded machine unbounded
   * spinning made decode 2.4x slower (spinning threads compete with the one they wait for). The full-logits
   * (scoring) session keeps the engine's setting.
   */
  spinning?: boolean;
  /**
   * Model folders only: where to cache the ONNX models built from it (generate/session-cache.ts), or false for no
   * cache. Default $LOOM_SESSION_CACHE (`off` turns it off), else ~/.cache/loom/sessions. Not used with a
   * `graph.linear` hook (a function the cache cannot key on).
   */
  sessionCache?: string | false;
}

/** How a session's model was obtained (tests and benches read CausalLM.sessionLoads). */
export interface SessionLoad {
  kind: 'decoder' | 'full';
  /** 'off': built in memory and sent as bytes (no folder, no cache, or a cache that could not be written). */
  cache: 'hit' | 'miss' | 'rebuilt' | 'off';
  path?: string;
}

/** Per-layer keys and values, [B, kvHeads, past, headDim] each, in the decoder's feed names. */
export interface KvCache {
  pastLength: number;
  tensors: Record<string, HostTensor>;
  /** Set by decode: the same values kept in the runtime's thread (tensors is then empty). */
  resident?: Record<string, ResidentTensor>;
}

/** Spin time of the decoder's idle threads (30-layer decode MatMul chain: 10, 100, 1000 µs and ORT's default within noise). */
const DECODE_SPIN_US = 10;

// ORT refuses protobufs over 2 GB; larger models go through external data in a temporary folder.
const INLINE_LIMIT = 1.8e9;

export class CausalLM {
  private decoder?: Promise<Session>;
  private full?: Promise<Session>;
  private closed = false;
  /** Set for an ONNX export: the exported graph (all-position logits, KV cache) serves every call. */
  private onnxFile?: string;
  /** Set for a model folder: its session models can be cached. */
  private folderDir?: string;
  /** One record per session loaded, in order. */
  readonly sessionLoads: SessionLoad[] = [];

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
    const lm = new CausalLM(config, () => loadWeights(dir), engine, !opts.engine, opts);
    lm.folderDir = dir;
    return lm;
  }

  /** A model folder or an ONNX export folder, whichever `dir` is. */
  static load(dir: string, opts: CausalLMOptions = {}): Promise<CausalLM> {
    return isOnnxExport(dir) ? CausalLM.fromOnnxExport(dir, opts) : CausalLM.fromFolder(dir, opts);
  }

  /** Runs an exported transformers.js folder as it is: onnx/<opts.file>, else the file of the export's dtype. */
  static async fromOnnxExport(dir: string, opts: CausalLMOptions = {}): Promise<CausalLM> {
    const config = readHfConfig(join(dir, 'config.json'));
    const name = opts.file ?? exportedOnnxFile(dir);
    const file = join(dir, 'onnx', name);
    if (!existsSync(file)) {
      const have = existsSync(join(dir, 'onnx'))
        ? readdirSync(join(dir, 'onnx')).filter((f) => f.endsWith('.onnx'))
        : [];
      throw new LoomError('MODEL_INVALID', `no onnx/${name} in the ONNX export ${dir}`, {
        file: dir,
        hint: have.length
          ? `this export holds ${have.join(', ')}`
          : 'give a folder written by `loom export --format onnx`',
      });
    }
    const engine = opts.engine ?? (await Engine.create({ threads: opts.threads, device: opts.device }));
    const noWeights = (): WeightSource => {
      throw new LoomError('INTERNAL', 'an ONNX export has no weights to build graphs from');
    };
    const lm = new CausalLM(config, noWeights, engine, !opts.engine, opts);
    lm.onnxFile = file;
    return lm;
  }

  /** The onnx/ file this model runs, when it is an ONNX export. */
  get onnxPath(): string | undefined {
    return this.onnxFile;
  }

  private async load(kind: 'decoder' | 'full'): Promise<Session> {
    if (this.closed) throw new LoomError('RUNTIME', 'model is closed');
    // an export's one graph serves decode as well as scoring: it spins like the decoder
    const spin = kind === 'decoder' || this.onnxFile ? (this.opts.spinning ?? false) : false;
    const spinOpts = spin ? { spinning: true, spinDurationUs: DECODE_SPIN_US } : {};
    if (this.onnxFile) return this.engine.load(this.onnxFile, spinOpts);
    const fused = this.opts.fused ?? true;
    const build = (weights: WeightSource): Graph => {
      const m = buildLlama(this.config, weights, {
        ...this.opts.graph,
        kvCache: kind === 'decoder',
        logits: kind === 'decoder' ? 'last' : 'all',
      });
      // Greedy decoding fetches this [B,1] id instead of B x vocab logits (ArgMax keeps the first maximum, as
      // sampling.ts argmax does).
      if (kind === 'decoder' && m.logits) m.graph.output('next_token', argMax(m.logits, -1));
      return m.graph;
    };
    const root = this.folderDir && !this.opts.graph?.linear ? sessionCacheRoot(this.opts.sessionCache) : undefined;
    if (root && this.folderDir) {
      const c = this.cached(root, this.folderDir, build, fused);
      if (c) {
        this.sessionLoads.push({ kind, cache: c.status, path: c.path });
        // ORT maps weights.bin from the cache folder: no weight crosses to the runtime's thread.
        return this.engine.load(c.path, spinOpts);
      }
    }
    this.sessionLoads.push({ kind, cache: 'off' });
    const graph = build(this.weights());
    const bytes = parameterCount(this.config).total * 4;
    // transfer: the serialised model moves to the runtime's thread instead of being copied (one copy fewer).
    if (bytes < INLINE_LIMIT) {
      return this.engine.load(toOnnx(graph, { fused }), { transfer: true, ...spinOpts });
    }
    const dir = mkdtempSync(join(tmpdir(), 'loom-model-'));
    try {
      const model = toOnnx(graph, { fused, externalData: { dir, file: 'weights.bin' } });
      writeFileSync(join(dir, 'model.onnx'), model);
      return await this.engine.load(join(dir, 'model.onnx'), spinOpts);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The session cache's entry, or undefined (after a warning) when the cache cannot be written: load in memory. */
  private cached(
    root: string,
    dir: string,
    build: (w: WeightSource) => Graph,
    fused: boolean,
  ): CachedModel | undefined {
    const folder = openModelFolder(dir);
    try {
      return cachedModel(root, folder, build, { fused });
    } catch (e) {
      if (!(e instanceof LoomError) || e.code !== 'OUTPUT_WRITE') throw e;
      process.emitWarning(`${e.message}; loading the model without the session cache`, { code: 'LOOM_SESSION_CACHE' });
      return undefined;
    } finally {
      folder.close();
    }
  }

  private decoderSession(): Promise<Session> {
    this.decoder ??= this.load('decoder');
    return this.decoder;
  }

  private fullSession(): Promise<Session> {
    if (this.onnxFile) return this.decoderSession();
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
    const logits = this.lastLogits(out.logits, ids);
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
    // An export has no next_token output: fetch its logits and take the argmax here.
    const fetches = [...keep, ...(this.onnxFile ? ['logits'] : ['next_token', ...(opts.logits ? ['logits'] : [])])];
    const feeds = this.decoderFeeds(ids, mask, cache);
    const { host, resident } = await session.runResident(feeds, fetches, keep);
    const kv: Record<string, ResidentTensor> = {};
    for (const name of this.kvNames()) {
      const t = resident[name.replace('past_key_values.', 'present.')];
      if (!t) throw new LoomError('INTERNAL', `decoder did not keep ${name.replace('past_key_values.', 'present.')}`);
      kv[name] = t;
    }
    const cacheOut = { pastLength: cache.pastLength + (ids[0]?.length ?? 0), tensors: {}, resident: kv };
    if (this.onnxFile) {
      const logits = this.lastLogits(host.logits, ids);
      const V = this.config.vocabSize;
      const next = ids.map((_, b) => firstMax(logits, b * V, V));
      return { next, logits: opts.logits ? logits : undefined, cache: cacheOut };
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
      cache: cacheOut,
    };
  }

  /** The decoder's logits as [B, V] floats: Loom's own graph returns the last position, an export all T of them. */
  private lastLogits(t: HostTensor | undefined, ids: readonly (readonly number[])[]): Float32Array {
    const all = t?.data;
    if (!(all instanceof Float32Array)) throw new LoomError('INTERNAL', 'decoder returned no float logits');
    if (!this.onnxFile) return all;
    return lastPositions(all, ids.length, ids[0]?.length ?? 0, this.config.vocabSize);
  }

  /** Free a resident cache that will not be continued (decode consumes the ones it is given). */
  async releaseCache(cache: KvCache): Promise<void> {
    if (!cache.resident) return;
    const handles = Object.values(cache.resident);
    cache.resident = undefined;
    await this.engine.freeResident(handles);
  }

  /**
   * A batched cache assembled from rows of resident caches (continuous batching: sequences join and leave between
   * decode steps): row i is row picks[i][1] of parts[picks[i][0]], its positions right-aligned to `length` (left
   * padding, which the caller's attention mask hides). The parts are consumed; the copy runs in the runtime's thread.
   */
  async composeCaches(
    parts: KvCache[],
    picks: readonly (readonly [number, number])[],
    length: number,
  ): Promise<KvCache> {
    const names = this.kvNames();
    const jobs = names.map((n) =>
      parts.map((c) => {
        const t = c.resident?.[n];
        if (!t) throw new LoomError('INTERNAL', `composeCaches: a part has no resident ${n} (decode it first)`);
        return t;
      }),
    );
    for (const c of parts) c.resident = undefined;
    const out = await this.engine.composeResident(jobs, picks, length);
    return { pastLength: length, tensors: {}, resident: Object.fromEntries(names.map((n, i) => [n, out[i]!])) };
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
        // an export's one graph also wants the (empty) past
        ...(this.onnxFile ? this.emptyCache(B).tensors : {}),
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

/** [B, T, V] -> [B, V] at t = T - 1. */
function lastPositions(all: Float32Array, B: number, T: number, V: number): Float32Array {
  if (T === 1) return all;
  const out = new Float32Array(B * V);
  for (let b = 0; b < B; b++) out.set(all.subarray((b * T + T - 1) * V, (b * T + T) * V), b * V);
  return out;
}

/** Index of the first maximum (ONNX ArgMax with select_last_index 0, as the engine's in-graph greedy). */
function firstMax(x: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[off + i]! > x[off + best]!) best = i;
  return best;
}

/** A `loom export --format onnx` folder: config.json and onnx/*.onnx, and no safetensors to build graphs from. */
export function isOnnxExport(dir: string): boolean {
  if (!existsSync(join(dir, 'config.json')) || !existsSync(join(dir, 'onnx'))) return false;
  if (readdirSync(dir).some((f) => f.endsWith('.safetensors'))) return false;
  return readdirSync(join(dir, 'onnx')).some((f) => f.endsWith('.onnx'));
}

// transformers.js dtype -> onnx/ file (its DEFAULT_DTYPE_SUFFIX_MAPPING); kept here so generate/ needs no export/.
const DTYPE_FILE: Record<string, string> = {
  fp32: 'model.onnx',
  fp16: 'model_fp16.onnx',
  q8: 'model_quantized.onnx',
  int8: 'model_int8.onnx',
  uint8: 'model_uint8.onnx',
  q4: 'model_q4.onnx',
  q4f16: 'model_q4f16.onnx',
  bnb4: 'model_bnb4.onnx',
};

/** The file an export was made for: config.json's transformers.js_config.dtype, when that file is there. */
function exportedOnnxFile(dir: string): string {
  try {
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const tj = cfg['transformers.js_config'] as { dtype?: unknown } | undefined;
    const f = typeof tj?.dtype === 'string' ? DTYPE_FILE[tj.dtype] : undefined;
    if (f && existsSync(join(dir, 'onnx', f))) return f;
  } catch {
    // readHfConfig has already reported a broken config.json
  }
  return 'model.onnx';
}
