/**
 * Runtime: ONNX Runtime sessions hosted in a worker thread (session.run blocks the thread it runs on, so the
 * main thread stays responsive). Sessions are long-lived; all thread/memory options are set in one place
 * (worker.mjs sessionOptions). Outputs come back by transferring their ArrayBuffers, not by copying.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LoomError } from '../../core/errors.ts';
import type { HostTensor } from '../graph/types.ts';
import * as backend from './worker.mjs';

export type { ResidentTensor } from './worker.mjs';

type ResidentTensor = backend.ResidentTensor;

export interface RuntimeOptions {
  /** intra-op threads per session; default = available cores. */
  threads?: number;
  device?: 'cpu' | 'cuda';
  deviceId?: number;
  /** Run ORT on the calling thread instead of a worker (blocks the event loop during run; for tests/tools). */
  inThread?: boolean;
  /** Let idle ORT threads spin (lower latency for tiny graphs, burns cores between runs). Default false. */
  spinning?: boolean;
  /** With spinning: microseconds an idle thread spins before it sleeps (ORT session.intra_op.spin_duration_us). */
  spinDurationUs?: number;
  /** ORT graph optimization level; default 'all'. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface LoadOptions {
  /**
   * This session's intra-op threads spin while idle instead of sleeping (default: the engine's `spinning`). A
   * batch-1 decode step is ~200 small MatMuls, each a parallel section: woken from sleep (a futex wake, costly in a
   * VM), the 30-layer SmolLM2 chain of decode MatMuls took 17-23 ms, spinning 11-13 ms (docs/benchmarks.md). The
   * cost: a spinning thread holds its core for a while after each run, and on a machine busier than its cores it
   * competes with the thread it waits for (decode then gets slower, not faster); spinDurationUs bounds that.
   */
  spinning?: boolean;
  /** With spinning: microseconds an idle thread spins before it sleeps (default: the engine's, else ORT's). */
  spinDurationUs?: number;
  /** Write ORT's optimized graph here (to inspect fusions). */
  optimizedModelFilePath?: string;
  /** Hand the model bytes' buffer to the worker instead of copying it (the caller's array becomes unusable). */
  transfer?: boolean;
  /** Turn on ORT's profiler; trace files start with this prefix (see Session.endProfiling). */
  profilePrefix?: string;
  /**
   * ORT's CPU memory arena (default on). Off, freed activations go back to the system instead of staying in the
   * arena: a 30-layer LoRA step peaked at 6.7 GB instead of 7.3 GB (docs/benchmarks.md), about 20 % slower.
   */
  memArena?: boolean;
  /**
   * ORT pre-packs each constant MatMul operand per consumer (default on). A training step reads every frozen
   * matrix twice (x·Wᵀ forward, g·W backward), so pre-packing holds two packed copies; off, it holds W once and
   * MLAS packs panels per call, which costs O(K·N) against the product's O(M·K·N): nothing at M = B·T rows, a
   * lot at decode's M = 1. Measured in bench/train/throughput.ts (--no-prepack).
   */
  prepack?: boolean;
  /**
   * ORT's memory pattern (default on): after the first run ORT plans every intermediate into one block per input
   * shape and allocates that block on each run, on top of what the arena already holds from the first run. A
   * training step (symbolic batch and sequence dims) peaked at 1.7 GB with it and 0.98 GB without (2-layer
   * SmolLM2 LoRA, arena on), at the same speed: training sessions turn it off (docs/benchmarks.md).
   */
  memPattern?: boolean;
}

export interface RunOptions {
  /** Hand the feeds' ArrayBuffers to the worker instead of copying them (the caller's arrays become unusable). */
  transfer?: boolean;
}

export interface Session {
  readonly inputNames: string[];
  readonly outputNames: string[];
  run(feeds: Record<string, HostTensor>, fetches?: string[], opts?: RunOptions): Promise<Record<string, HostTensor>>;
  /** Stop profiling (sessions loaded with profilePrefix) and return the path of ORT's JSON trace. */
  endProfiling(): Promise<string>;
  /**
   * Like run, but the outputs named in `keep` stay in the runtime's thread (only a handle comes back) and feeds may
   * be such handles, consumed by the run. For values that go straight back in, e.g. a KV cache between decode
   * steps: nothing is copied through the caller per step. Free handles that are not fed back with freeResident.
   */
  runResident(
    feeds: Record<string, HostTensor | ResidentTensor>,
    fetches: string[],
    keep: string[],
  ): Promise<{ host: Record<string, HostTensor>; resident: Record<string, ResidentTensor> }>;
  release(): Promise<void>;
}

export function isResident(t: HostTensor | ResidentTensor): t is ResidentTensor {
  return (t as ResidentTensor).resident !== undefined;
}

const CUDA_HINT =
  'onnxruntime-node ships CUDA provider libraries only when its install script downloads them: run ' +
  '`node node_modules/onnxruntime-node/script/install --onnxruntime-node-install=cuda12` (or npm install with ' +
  '`--onnxruntime-node-install-cuda=v12`); this project sets onnxruntime-node-install=skip in .npmrc. ' +
  'CUDA 12 and cuDNN 9 must be installed. Use device: cpu otherwise.';

function runtimeError(e: unknown, what: string): LoomError {
  const msg = e instanceof Error ? e.message : String(e);
  const cuda = /cuda|shared library/i.test(msg);
  return new LoomError('RUNTIME', `${what}: ${msg}`, cuda ? { hint: CUDA_HINT, cause: e } : { cause: e });
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface Transport {
  call(type: string, payload: Record<string, unknown>, transfer?: ArrayBuffer[]): Promise<unknown>;
  close(): Promise<void>;
}

class WorkerTransport implements Transport {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private next = 1;
  private dead: Error | undefined;

  constructor() {
    this.worker = new Worker(new URL('./worker.mjs', import.meta.url), { workerData: { loomEngine: true } });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: { message: string } }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error?.message ?? 'unknown worker error'));
    });
    const failAll = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) => failAll(new Error(`engine worker exited (code ${code})`)));
  }

  call(type: string, payload: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, type, ...payload }, transfer);
    });
  }

  async close(): Promise<void> {
    if (!this.dead) {
      try {
        await this.call('close', {});
      } catch {
        // The worker is going away anyway.
      }
    }
    await this.worker.terminate();
  }
}

class InThreadTransport implements Transport {
  async call(type: string, p: Record<string, unknown>): Promise<unknown> {
    if (type === 'load') return backend.load(p.model as Uint8Array | string, p.opts as backend.BackendOptions);
    if (type === 'run') {
      return backend.run(
        p.session as number,
        p.feeds as Record<string, HostTensor | ResidentTensor>,
        p.fetches as string[] | undefined,
        p.keep as string[] | undefined,
      );
    }
    if (type === 'free') return backend.free(p.handles as number[]);
    if (type === 'compose') {
      return backend.compose(p.jobs as number[][], p.picks as [number, number][], p.length as number);
    }
    if (type === 'residentCount') return backend.residentCount();
    if (type === 'release') return backend.release(p.session as number);
    if (type === 'endProfiling') return backend.endProfiling(p.session as number);
    throw new Error(`unknown call ${type}`);
  }
  async close(): Promise<void> {
    await backend.releaseAll();
  }
}

/** Make each feed's data own exactly its ArrayBuffer (so a copy or transfer moves only its bytes). */
function ownBuffer(h: HostTensor): HostTensor {
  const d = h.data;
  if (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer) return h;
  return { ...h, data: d.slice() as HostTensor['data'] };
}

export class Engine {
  private closed = false;
  private readonly sessions = new Set<SessionImpl>();

  private constructor(
    private readonly transport: Transport,
    readonly options: Required<Pick<RuntimeOptions, 'threads' | 'device'>> & RuntimeOptions,
  ) {}

  static async create(opts: RuntimeOptions = {}): Promise<Engine> {
    const device = opts.device ?? 'cpu';
    if (device !== 'cpu' && device !== 'cuda') {
      throw new LoomError('RUNTIME', `unknown device ${String(device)}`, { hint: 'use cpu or cuda' });
    }
    if (device === 'cuda' && !backend.cudaAvailable()) {
      throw new LoomError(
        'RUNTIME',
        `device cuda requested but the CUDA execution provider is not installed (looked in ${backend.ortBinDir()})`,
        {
          hint: CUDA_HINT,
        },
      );
    }
    const threads = opts.threads ?? availableParallelism();
    const transport = opts.inThread ? new InThreadTransport() : new WorkerTransport();
    return new Engine(transport, { ...opts, threads, device });
  }

  async load(model: Uint8Array | string, opts: LoadOptions = {}): Promise<Session> {
    if (this.closed) throw new LoomError('RUNTIME', 'engine is closed');
    const o = this.options;
    const bopts: backend.BackendOptions = {
      threads: o.threads,
      device: o.device,
      deviceId: o.deviceId,
      spinning: opts.spinning ?? o.spinning,
      spinDurationUs: opts.spinDurationUs ?? o.spinDurationUs,
      optimization: o.optimization,
      optimizedModelFilePath: opts.optimizedModelFilePath,
      profilePrefix: opts.profilePrefix,
      memArena: opts.memArena,
      prepack: opts.prepack,
      memPattern: opts.memPattern,
    };
    let info: { id: number; inputNames: string[]; outputNames: string[] };
    try {
      const transfer =
        opts.transfer &&
        typeof model !== 'string' &&
        model.buffer instanceof ArrayBuffer &&
        model.byteOffset === 0 &&
        model.byteLength === model.buffer.byteLength
          ? [model.buffer]
          : [];
      info = (await this.transport.call('load', { model, opts: bopts }, transfer)) as typeof info;
    } catch (e) {
      throw runtimeError(e, typeof model === 'string' ? `loading ${model}` : 'loading model');
    }
    const s = new SessionImpl(this.transport, info.id, info.inputNames, info.outputNames, () =>
      this.sessions.delete(s),
    );
    this.sessions.add(s);
    return s;
  }

  /** Free resident values (RunOptions of runResident) that will not be fed back. */
  async freeResident(handles: readonly ResidentTensor[]): Promise<void> {
    if (this.closed || handles.length === 0) return;
    await this.transport.call('free', { handles: handles.map((h) => h.resident) });
  }

  /**
   * Assemble resident [B, H, S, D] values from rows of others, in the runtime's thread (worker.mjs compose): for
   * each job, output row i is row picks[i][1] of job[picks[i][0]], right-aligned to `length` positions (zeros
   * before). All sources are consumed. Used when sequences join or leave a batched KV cache.
   */
  async composeResident(
    jobs: readonly (readonly ResidentTensor[])[],
    picks: readonly (readonly [number, number])[],
    length: number,
  ): Promise<ResidentTensor[]> {
    if (this.closed) throw new LoomError('RUNTIME', 'engine is closed');
    try {
      return (await this.transport.call('compose', {
        jobs: jobs.map((j) => j.map((h) => h.resident)),
        picks,
        length,
      })) as ResidentTensor[];
    } catch (e) {
      throw runtimeError(e, 'composing resident values');
    }
  }

  /** Number of resident values held by the runtime (a leak check for tests). */
  async residentCount(): Promise<number> {
    if (this.closed) return 0;
    return (await this.transport.call('residentCount', {})) as number;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sessions.clear();
    await this.transport.close();
  }
}

class SessionImpl implements Session {
  private released = false;
  constructor(
    private readonly transport: Transport,
    private readonly id: number,
    readonly inputNames: string[],
    readonly outputNames: string[],
    private readonly onRelease: () => void,
  ) {}

  async run(
    feeds: Record<string, HostTensor>,
    fetches?: string[],
    opts: RunOptions = {},
  ): Promise<Record<string, HostTensor>> {
    if (this.released) throw new LoomError('RUNTIME', 'session was released');
    const own: Record<string, HostTensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [k, v] of Object.entries(feeds)) {
      own[k] = ownBuffer(v);
      if (opts.transfer && own[k].data.buffer instanceof ArrayBuffer) transfer.push(own[k].data.buffer);
    }
    try {
      return (await this.transport.call('run', { session: this.id, feeds: own, fetches }, [
        ...new Set(transfer),
      ])) as Record<string, HostTensor>;
    } catch (e) {
      throw runtimeError(e, 'session.run');
    }
  }

  async runResident(
    feeds: Record<string, HostTensor | ResidentTensor>,
    fetches: string[],
    keep: string[],
  ): Promise<{ host: Record<string, HostTensor>; resident: Record<string, ResidentTensor> }> {
    if (this.released) throw new LoomError('RUNTIME', 'session was released');
    const own: Record<string, HostTensor | ResidentTensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [k, v] of Object.entries(feeds)) {
      if (isResident(v)) {
        own[k] = v;
        continue;
      }
      const h = ownBuffer(v);
      own[k] = h;
      if (h.data.buffer instanceof ArrayBuffer) transfer.push(h.data.buffer);
    }
    let out: Record<string, HostTensor | ResidentTensor>;
    try {
      out = (await this.transport.call('run', { session: this.id, feeds: own, fetches, keep }, [
        ...new Set(transfer),
      ])) as Record<string, HostTensor | ResidentTensor>;
    } catch (e) {
      throw runtimeError(e, 'session.run');
    }
    const host: Record<string, HostTensor> = {};
    const resident: Record<string, ResidentTensor> = {};
    for (const [k, v] of Object.entries(out)) {
      if (isResident(v)) resident[k] = v;
      else host[k] = v;
    }
    return { host, resident };
  }

  async endProfiling(): Promise<string> {
    if (this.released) throw new LoomError('RUNTIME', 'session was released');
    try {
      return (await this.transport.call('endProfiling', { session: this.id })) as string;
    } catch (e) {
      throw runtimeError(e, 'session.endProfiling');
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.onRelease();
    try {
      await this.transport.call('release', { session: this.id });
    } catch {
      // Engine already closed: nothing left to release.
    }
  }
}
