/**
 * Worker-thread pool for the quality filter: batches of texts are evaluated on N threads, results come back as
 * promises that the step awaits in submission order, so row order and reject order stay the same as inline.
 * Workers are .ts modules: under tsx each worker first registers tsx's loader (Node 20 does not pass the parent's
 * `--import` hooks to workers), then imports worker.ts.
 */
import type { Worker } from 'node:worker_threads';
import { LoomError } from '../../core/errors.ts';
import type { LangResult } from '../langid.ts';
import { spawnTsWorker } from '../worker-thread.ts';
import type { QualityFilterConfig } from './presets.ts';
import type { Verdict } from './rules.ts';

export interface WorkerEvaluation {
  drop?: { reason: string } & Verdict;
  lang: LangResult;
  linesRemoved: number;
  /** Only set when C4 removed lines. */
  text?: string;
}

interface Reply {
  id: number;
  results?: WorkerEvaluation[];
  error?: string;
}

function spawn(cfg: QualityFilterConfig): Worker {
  return spawnTsWorker(new URL('./worker.ts', import.meta.url), cfg);
}

export class FilterPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<
    number,
    { resolve: (r: WorkerEvaluation[]) => void; reject: (e: unknown) => void }
  >();
  private nextId = 0;
  private rr = 0;

  constructor(cfg: QualityFilterConfig, count: number) {
    for (let i = 0; i < count; i++) {
      const w = spawn(cfg);
      w.on('message', (m: Reply) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) p.reject(new LoomError('INTERNAL', `filter worker failed: ${m.error}`));
        else p.resolve(m.results!);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  evaluate(items: [string, boolean][]): Promise<WorkerEvaluation[]> {
    const id = this.nextId++;
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, items });
    });
  }

  get size(): number {
    return this.workers.length;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
