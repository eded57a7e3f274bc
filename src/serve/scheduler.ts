/**
 * Continuous batching for the local backend: every request generating on a model shares one batched decode step
 * (generate/batch.ts DecodeBatch, KV cache resident in the engine worker). Between steps finished, cancelled and
 * timed-out requests leave the batch and waiting ones join it: newcomers are prefilled (up to `maxPrefillTokens`
 * prompt tokens; prompts of similar length share a run), then the next decode step runs for everyone, so a long
 * prompt delays the running streams by one prefill, not by its whole generation.
 *
 * The bounded queue in front (429 + Retry-After) is the model's Limiter (serve/limiter.ts) with
 * concurrency = maxBatch: the scheduler only ever holds requests that already own a slot. Cancellation is the
 * request's AbortSignal (client disconnect or per-request timeout, serve/generation.ts): the row leaves before the
 * next step and its cache rows are freed.
 *
 * Token semantics are generateIds' (generate/generate.ts): the same EOS, max-tokens, onToken veto and per-request
 * Sampler seeded with `seed`, so a request gets the same tokens batched as alone.
 *
 * API:
 *   const s = new BatchScheduler(lm, { maxBatch: 8 })
 *   s.run(prompts, opts)       IdsRunner (generateText's runIds): each prompt becomes one scheduled request
 *   s.submit(prompt, opts)     -> IdsResult
 *   s.running / s.queued / s.steps
 *   await s.close()
 */
import { LoomError } from '../core/errors.ts';
import { DecodeBatch } from '../generate/batch.ts';
import type { CausalLM } from '../generate/causal-lm.ts';
import {
  type GenerateIdsOptions,
  type IdsResult,
  type IdsRunner,
  isGraphGreedy,
  maxNewTokensFor,
  samplingOf,
  takeToken,
} from '../generate/generate.ts';
import { Sampler } from '../generate/sampling.ts';

export interface SchedulerOptions {
  /** Sequences decoding at once. */
  maxBatch: number;
  /** Prompt tokens prefilled between two decode steps (at least one request always joins). Default 2048. */
  maxPrefillTokens?: number;
  /** Called after each decode step with the number of rows it ran (metrics: running batch size). */
  onStep?: (rows: number) => void;
}

interface Job {
  prompt: readonly number[];
  opts: GenerateIdsOptions;
  eos: ReadonlySet<number>;
  maxNew: number;
  sampler: Sampler;
  greedy: boolean;
  res: IdsResult;
  /** Token to feed at the next step. */
  last: number;
  resolve: (r: IdsResult) => void;
  reject: (e: unknown) => void;
}

export class BatchScheduler {
  private waiting: Job[] = [];
  private readonly active = new Map<number, Job>();
  private batch: DecodeBatch;
  private loop?: Promise<void>;
  private closed = false;
  /** Decode steps run so far (tests, metrics). */
  steps = 0;

  constructor(
    private readonly lm: CausalLM,
    private readonly opts: SchedulerOptions,
  ) {
    if (!(opts.maxBatch >= 1)) throw new LoomError('CONFIG_INVALID', 'scheduler: maxBatch must be at least 1');
    this.batch = this.newBatch();
  }

  get running(): number {
    return this.active.size;
  }

  get queued(): number {
    return this.waiting.length;
  }

  readonly run: IdsRunner = (prompts, o) =>
    Promise.all(
      prompts.map((p, i) => this.submit(p, { ...o, onToken: o.onToken && ((_r, id) => o.onToken?.(i, id)) })),
    );

  submit(prompt: readonly number[], o: GenerateIdsOptions = {}): Promise<IdsResult> {
    if (this.closed) return Promise.reject(new LoomError('RUNTIME', 'scheduler is closed'));
    if (prompt.length === 0) {
      return Promise.reject(new LoomError('INPUT_MALFORMED', 'generate: every prompt needs at least one token'));
    }
    const res: IdsResult = { ids: [], finishReason: 'length', promptTokens: prompt.length };
    let maxNew: number;
    try {
      maxNew = maxNewTokensFor(this.lm, prompt.length, o.maxNewTokens);
    } catch (e) {
      return Promise.reject(e);
    }
    if (maxNew === 0) return Promise.resolve(res);
    const settings = samplingOf(o);
    return new Promise<IdsResult>((resolve, reject) => {
      this.waiting.push({
        prompt,
        opts: o,
        eos: new Set(o.eosIds ?? this.lm.config.eosTokenId),
        maxNew,
        sampler: new Sampler(settings),
        greedy: isGraphGreedy(settings),
        res,
        last: 0,
        resolve,
        reject,
      });
      this.kick();
    });
  }

  private kick(): void {
    if (this.loop) return;
    this.loop = this.drive().finally(() => {
      this.loop = undefined;
      if (this.waiting.length > 0) this.kick(); // arrived while the loop was winding down
    });
  }

  private newBatch(): DecodeBatch {
    const cfg = this.lm.config;
    return new DecodeBatch(this.lm, { padId: cfg.padTokenId ?? cfg.eosTokenId[0] ?? 0 });
  }

  private async drive(): Promise<void> {
    // Requests arriving in the same turn of the event loop start in one prefill.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.waiting.length > 0 || this.active.size > 0) {
      try {
        this.reap();
        await this.admit();
        this.reap();
        if (this.active.size > 0) await this.step();
      } catch (e) {
        // A failed run poisons the batch's cache: fail the requests in it, start the others on a fresh batch.
        for (const job of this.active.values()) job.reject(e);
        this.active.clear();
        await this.batch.release().catch(() => {});
        this.batch = this.newBatch();
      }
    }
    await this.batch.release(); // idle: no cache held between bursts
  }

  /** Cancelled requests leave: their rows are dropped before the next step (waiting ones never start). */
  private reap(): void {
    this.waiting = this.waiting.filter((job) => {
      if (!job.opts.signal?.aborted) return true;
      job.res.finishReason = 'aborted';
      job.resolve(job.res);
      return false;
    });
    for (const [row, job] of this.active) {
      if (job.opts.signal?.aborted) {
        job.res.finishReason = 'aborted';
        this.finish(row, job);
      }
    }
  }

  /**
   * Newcomers join between two decode steps, up to `maxPrefillTokens` prompt tokens (at least one request). Prefill
   * is compute-bound, so left padding is real work: prompts share one run only while padding stays under a quarter
   * of it; each group's first tokens go out as soon as its run ends.
   */
  private async admit(): Promise<void> {
    const free = this.opts.maxBatch - this.active.size;
    const budget = this.opts.maxPrefillTokens ?? 2048;
    const take: Job[] = [];
    let tokens = 0;
    while (take.length < free && this.waiting.length > 0) {
      const n = this.waiting[0]!.prompt.length;
      if (take.length > 0 && tokens + n > budget) break;
      take.push(this.waiting.shift()!);
      tokens += n;
    }
    const groups: Job[][] = [];
    for (const job of take) {
      const g = groups.at(-1);
      const lens = [...(g ?? []), job].map((j) => j.prompt.length);
      const padded = Math.max(...lens) * lens.length;
      if (g && padded - lens.reduce((a, b) => a + b, 0) <= padded / 4) g.push(job);
      else groups.push([job]);
    }
    for (const group of groups) await this.prefill(group);
  }

  private async prefill(group: Job[]): Promise<void> {
    let out: Awaited<ReturnType<DecodeBatch['join']>>;
    try {
      out = await this.batch.join(
        group.map((j) => j.prompt),
        { logits: group.some((j) => !j.greedy) },
      );
    } catch (e) {
      for (const job of group) job.reject(e);
      return;
    }
    const V = this.lm.config.vocabSize;
    out.ids.forEach((row, i) => {
      this.active.set(row, group[i]!);
      this.accept(row, group[i]!, out.next[i]!, out.logits?.subarray(i * V, (i + 1) * V));
    });
  }

  private async step(): Promise<void> {
    const logits = [...this.active.values()].some((j) => !j.greedy);
    const out = await this.batch.step((row) => this.active.get(row)?.last ?? 0, { logits });
    this.steps++;
    this.opts.onStep?.(out.ids.length);
    const V = this.lm.config.vocabSize;
    out.ids.forEach((row, i) => {
      const job = this.active.get(row);
      if (job) this.accept(row, job, out.next[i]!, out.logits?.subarray(i * V, (i + 1) * V));
    });
  }

  /**
   * A row's new token, as generateIds takes it: sampled from the logits unless plain greedy. A request's own
   * callbacks (sampler hook, onToken) failing fails that request only; the batch goes on.
   */
  private accept(row: number, job: Job, greedyId: number, logits: Float32Array | undefined): void {
    try {
      const id =
        job.greedy || !logits ? greedyId : job.sampler.next(logits, { prompt: job.prompt, generated: job.res.ids });
      const done = takeToken(job.res, id, job.eos, job.opts.onToken && ((t) => job.opts.onToken?.(0, t)));
      job.last = id;
      // As generateIds: at most maxNew tokens are produced (an EOS among them ends the request earlier).
      if (done || job.res.ids.length >= job.maxNew) this.finish(row, job);
    } catch (e) {
      this.active.delete(row);
      this.batch.leave(row);
      job.reject(e);
    }
  }

  private finish(row: number, job: Job): void {
    this.active.delete(row);
    this.batch.leave(row);
    job.resolve(job.res);
  }

  /** Stop taking work; waits for running requests to finish, then frees the cache. */
  async close(): Promise<void> {
    this.closed = true;
    await this.loop;
    await this.batch.release();
  }
}
