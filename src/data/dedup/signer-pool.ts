/**
 * Signs text batches on worker threads (one per core by default), falling back to the calling thread when
 * workers are off. Results come back as promises; callers await them in submission order, so row order is kept.
 *
 * Workers are .ts modules: when running under tsx, each worker first registers tsx's loader (Node 20 does not
 * pass the parent's --import hooks to workers), then imports the worker module.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { LoomError } from '../../core/errors.ts';
import { spawnTsWorker } from '../worker-thread.ts';
import { makeBatchSigner, type SignedBatch, type SignParams } from './signature.ts';

interface Pending {
  resolve: (b: SignedBatch) => void;
  reject: (e: unknown) => void;
}

function spawn(params: SignParams): Worker {
  return spawnTsWorker(new URL('./signature-worker.ts', import.meta.url), params);
}

export class SignerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private rr = 0;
  private readonly inline: (texts: readonly string[]) => SignedBatch;
  private failed: unknown;

  constructor(
    private readonly params: SignParams,
    private readonly workerCount: number,
  ) {
    this.inline = makeBatchSigner(params);
  }

  static defaultWorkers(): number {
    return Math.max(1, Math.min(availableParallelism(), 8));
  }

  get started(): boolean {
    return this.workers.length > 0;
  }

  /** Starts the worker threads (no-op when the pool was made with 0 workers or is already started). */
  start(): void {
    if (this.workers.length > 0 || this.workerCount <= 0) return;
    for (let i = 0; i < this.workerCount; i++) {
      const w = spawn(this.params);
      w.on('message', (m: SignedBatch & { id: number }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        p.resolve({ sigs: m.sigs, keys: m.keys, shingles: m.shingles });
      });
      w.on('error', (e) => this.fail(e));
      this.workers.push(w);
    }
  }

  private fail(e: unknown): void {
    this.failed = e;
    for (const p of this.pending.values()) {
      p.reject(new LoomError('INTERNAL', `hashing worker failed: ${(e as Error).message}`, { cause: e }));
    }
    this.pending.clear();
  }

  /** Signs on a worker when started, else synchronously here. */
  sign(texts: string[]): Promise<SignedBatch> {
    if (this.workers.length === 0) return Promise.resolve(this.inline(texts));
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise<SignedBatch>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, texts });
    });
  }

  get parallelism(): number {
    return Math.max(1, this.workers.length);
  }

  async close(): Promise<void> {
    const ws = this.workers.splice(0);
    await Promise.all(ws.map((w) => w.terminate()));
  }
}
