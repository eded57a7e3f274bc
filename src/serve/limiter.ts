/**
 * A bounded slot pool: at most `concurrency` requests generate at once, at most `maxQueue` wait; beyond that a
 * request is refused at once (429 + Retry-After) instead of piling up until memory runs out.
 */
import { ApiError } from './protocol.ts';

export class Limiter {
  private active = 0;
  private readonly waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  constructor(
    readonly concurrency: number,
    readonly maxQueue: number,
    private readonly onChange: (queued: number, running: number) => void = () => {},
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with a release function once a slot is free; rejects with 429 when the queue is full. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.concurrency) {
      this.active++;
      this.onChange(this.waiting.length, this.active);
      return this.releaser();
    }
    if (this.waiting.length >= this.maxQueue) {
      throw new ApiError(
        429,
        'server is busy: the request queue is full, retry later',
        'rate_limit_error',
        null,
        'queue_full',
        1,
      );
    }
    await new Promise<void>((resolve, reject) => {
      const w = { resolve, reject };
      this.waiting.push(w);
      this.onChange(this.waiting.length, this.active);
      signal?.addEventListener('abort', () => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          this.onChange(this.waiting.length, this.active);
          reject(signal.reason);
        }
      });
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      // Hand the slot straight to the next waiter: `active` stays the same.
      if (next) next.resolve();
      else this.active--;
      this.onChange(this.waiting.length, this.active);
    };
  }
}
