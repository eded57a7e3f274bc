import { join } from 'node:path';
import type { TrainConfig } from '../config/train.ts';
import { writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { Progress } from '../core/progress.ts';
import type { Engine, HostTensor, Session } from '../engine/index.ts';
import type { Float32Named } from '../models/safetensors.ts';
import type { Registry } from '../registry/db.ts';
import { type Batch, collate, type PackedRow } from './batching.ts';
import { type CheckpointData, checkpointName, saveCheckpoint, type TrainState } from './checkpoint.ts';
import type { ParamInfo, TrainGraphs } from './graph.ts';
import type { MetricsLog } from './metrics.ts';
import { configHash, epochBatches, evalBatches, type Prepared } from './prepare.ts';
import { QLORA_SCHEME } from './quant.ts';
import { Rng } from './rng.ts';
import { lrAt, resolveWarmup, type ScheduleOptions } from './schedule.ts';

/**
 * Training stage 3, the loop: the ORT sessions of the step graph, the trainable tensors and AdamW moments on the JS
 * side, the batch cursor (epoch, batch in epoch: rebuilt deterministically on resume), gradient accumulation,
 * logging, evaluation with early stopping, and checkpoints.
 */
export interface Sessions {
  step: Session;
  grad?: Session;
  evaluate?: Session;
}

/** What the loop reports into: the run's metrics file, registry and result flags. */
export interface LoopRun {
  outputDir: string;
  runId: string;
  metrics: MetricsLog;
  registry?: Registry;
  signal?: AbortSignal;
  stopAfterSteps?: number;
  quiet?: boolean;
  result: { firstLoss?: number; lastLoss?: number; interrupted: boolean; earlyStopped: boolean };
}

export async function loadSessions(engine: Engine, graphs: TrainGraphs, c: TrainConfig): Promise<Sessions> {
  // Frozen matrices are read twice per step (x·Wᵀ forward, g·W backward); pre-packed, each consumer keeps its own
  // packed copy. Off, ORT keeps W once and MLAS packs panels per call (O(K·N) against O(B·T·K·N)): docs/train.md.
  const prepack = c.ort_prepack ?? c.finetuning_type === 'full';
  const loadOpts = { transfer: true, memArena: c.ort_memory_arena, prepack, memPattern: c.ort_memory_pattern };
  const step = await engine.load(graphs.step!, loadOpts);
  const grad = graphs.grad ? await engine.load(graphs.grad, loadOpts) : undefined;
  const evaluate = graphs.evaluate ? await engine.load(graphs.evaluate, loadOpts) : undefined;
  // the model protos hold a copy of every frozen weight: let them go once ORT has its own
  graphs.step = undefined;
  graphs.grad = undefined;
  graphs.evaluate = undefined;
  return { step, grad, evaluate };
}

export class TrainLoop {
  readonly K: number;
  readonly batchesPerEpoch: number;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  readonly sched: ScheduleOptions;
  state: TrainState;
  private readonly params: Map<string, Float32Array>;
  private readonly mom1: Map<string, Float32Array>;
  private readonly mom2: Map<string, Float32Array>;
  private readonly rng: Rng;
  private readonly firstEpoch: PackedRow[][];
  private epochCache: { epoch: number; batches: PackedRow[][] };

  constructor(
    readonly c: TrainConfig,
    readonly prepared: Prepared,
    readonly graphs: TrainGraphs,
    private readonly sessions: Sessions,
    resumeFrom: CheckpointData | undefined,
  ) {
    this.K = c.gradient_accumulation_steps;
    this.firstEpoch = epochBatches(prepared, c, 0);
    this.epochCache = { epoch: 0, batches: this.firstEpoch };
    this.batchesPerEpoch = this.firstEpoch.length;
    this.stepsPerEpoch = Math.max(1, Math.floor(this.batchesPerEpoch / this.K));
    this.totalSteps = c.max_steps ?? Math.max(1, Math.ceil(c.num_train_epochs * this.stepsPerEpoch));
    this.sched = {
      type: c.lr_scheduler_type,
      lr: c.learning_rate,
      warmupSteps: resolveWarmup(this.totalSteps, c.warmup_steps, c.warmup_ratio),
      totalSteps: this.totalSteps,
      minLr: c.min_lr,
    };
    this.params = new Map(graphs.params.map((q) => [q.name, new Float32Array(q.init)]));
    this.mom1 = new Map(graphs.params.map((q) => [q.name, new Float32Array(q.init.length)]));
    this.mom2 = new Map(graphs.params.map((q) => [q.name, new Float32Array(q.init.length)]));
    this.state = {
      step: 0,
      epoch: 0,
      batchInEpoch: 0,
      rng: new Rng(c.seed).state(),
      tokensSeen: 0,
      bestEvalLoss: null,
      bestStep: null,
      badEvals: 0,
      configHash: configHash(c),
      ...(c.finetuning_type === 'qlora' ? { quant: QLORA_SCHEME } : {}),
      elapsed: 0,
    };
    if (resumeFrom) {
      for (const t of resumeFrom.m) this.mom1.set(t.name, t.data);
      for (const t of resumeFrom.v) this.mom2.set(t.name, t.data);
      this.state = resumeFrom.state;
    }
    this.rng = new Rng(this.state.rng);
  }

  canEvaluate(): boolean {
    return this.sessions.evaluate !== undefined;
  }

  sessionCount(): number {
    return 1 + (this.sessions.grad ? 1 : 0) + (this.sessions.evaluate ? 1 : 0);
  }

  tokensPerEpoch(): number {
    return this.firstEpoch.reduce((a, rows) => a + rows.reduce((s, r) => s + r.ids.length, 0), 0);
  }

  /** The trainable tensors as they are now. */
  named(): Float32Named[] {
    return this.named_(this.params);
  }

  private named_(src: Map<string, Float32Array>): Float32Named[] {
    return this.graphs.params.map((q) => ({ name: q.name, dims: q.dims, data: src.get(q.name)! }));
  }

  private stateFeeds(): Record<string, HostTensor> {
    const f: Record<string, HostTensor> = {};
    for (const q of this.graphs.params) {
      f[q.name] = tensor('float32', q.dims, this.params.get(q.name)!);
      f[`exp_avg.${q.name}`] = tensor('float32', q.dims, this.mom1.get(q.name)!);
      f[`exp_avg_sq.${q.name}`] = tensor('float32', q.dims, this.mom2.get(q.name)!);
    }
    return f;
  }

  private paramFeeds(): Record<string, HostTensor> {
    const f: Record<string, HostTensor> = {};
    for (const q of this.graphs.params) f[q.name] = tensor('float32', q.dims, this.params.get(q.name)!);
    return f;
  }

  private extraFeeds(b: Batch): Record<string, HostTensor> {
    const f: Record<string, HostTensor> = {};
    for (const d of this.graphs.dropout) {
      const n = b.batch * b.seq * d.features;
      const mask = new Float32Array(n);
      const keep = 1 / (1 - d.rate);
      for (let i = 0; i < n; i++) mask[i] = this.rng.next() < d.rate ? 0 : keep;
      f[d.name] = tensor('float32', [b.batch, b.seq, d.features], mask);
    }
    return f;
  }

  /** The next batch of the current epoch, from the cursor. */
  private nextBatch(): Batch {
    const state = this.state;
    if (state.batchInEpoch >= this.batchesPerEpoch) {
      state.epoch++;
      state.batchInEpoch = 0;
    }
    if (this.epochCache.epoch !== state.epoch)
      this.epochCache = { epoch: state.epoch, batches: epochBatches(this.prepared, this.c, state.epoch) };
    const rows = this.epochCache.batches[state.batchInEpoch++]!;
    return collate(rows);
  }

  /** Weighted mean eval loss over the eval rows, or undefined without an eval set. */
  async evaluate(): Promise<number | undefined> {
    const session = this.sessions.evaluate;
    if (!session) return undefined;
    let num = 0;
    let den = 0;
    const pf = this.paramFeeds();
    for (const rows of evalBatches(this.prepared, this.c)) {
      const b = collate(rows);
      if (b.weightSum === 0) continue;
      const feeds = { ...batchFeeds(b, this.graphs.maskMode), ...pf };
      const out = await session.run(feeds, ['loss']);
      num += lossOf(out) * b.weightSum;
      den += b.weightSum;
    }
    return den > 0 ? num / den : undefined;
  }

  /**
   * Pre-flight timing probe (outputs discarded, the RNG stream restored). ONNX Runtime's first two runs of a session
   * cost 5–10× a settled one (thread pool and arena set-up), so warm-up runs come first; then up to
   * `samples` first-epoch batches of different sizes are timed (the faster of two runs), so pre-flight can fit time against padded
   * tokens (calibrate.ts) instead of extrapolating one cold, longest batch. The eval session gets the same warm-up
   * and one timed batch.
   */
  /** Timed probe runs for pre-flight; the defaults are the full probe (TrainJob.probe). */
  async measure({ samples = 4, warmups = 2, repeats = 2 } = {}): Promise<TimingProbe> {
    const feedsFor = (rows: PackedRow[]) => {
      const b = collate(rows);
      return {
        tokens: b.batch * b.seq,
        feeds: {
          ...batchFeeds(b, this.graphs.maskMode),
          ...this.stateFeeds(),
          ...this.extraFeeds(b),
          loss_scale: scalar(1),
          decay_factor: scalar(1),
          step_size: scalar(0),
          bias_correction2_sqrt: scalar(1),
          ...(this.K > 1 ? zeroGrads(this.graphs.params) : {}),
        },
      };
    };
    const timed = async (run: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await run();
      return (performance.now() - t0) / 1000;
    };
    // Distinct sizes first: the largest and smallest padded batches bound the fit.
    const order = [...this.firstEpoch.keys()].sort((x, y) => padded(this.firstEpoch[y]!) - padded(this.firstEpoch[x]!));
    const pick = [...new Set([order[0]!, order[order.length - 1]!, ...order.filter((_, i) => i % 3 === 1)])].slice(
      0,
      Math.max(1, samples),
    );
    const first = feedsFor(this.firstEpoch[pick[0]!]!);
    // Two warm-up runs always; more (up to 8) while they stay cheap, since small models keep speeding up for a few
    // more runs (quickstart pretrain: 575, 303, ~50 ms for runs 3–8, then ~30 ms) while big ones settle sooner.
    const warmStart = performance.now();
    for (let i = 0; i < (warmups > 0 ? 8 : 0) && (i < warmups || performance.now() - warmStart < 1500); i++)
      await this.sessions.step.run(first.feeds, ['loss']);
    const step: { tokens: number; seconds: number }[] = [];
    for (const idx of pick) {
      const f = idx === pick[0] ? first : feedsFor(this.firstEpoch[idx]!);
      const run = () => timed(() => this.sessions.step.run(f.feeds, ['loss']));
      step.push({ tokens: f.tokens, seconds: await fastestOf(repeats, run) });
    }
    // dropout masks drawn for the probe must not shift the run's random stream
    this.rng.restore(this.state.rng);
    let evaluation: { tokens: number; seconds: number } | undefined;
    const ev = this.sessions.evaluate;
    const evRows = ev ? evalBatches(this.prepared, this.c).find((r) => collate(r).weightSum > 0) : undefined;
    if (ev && evRows) {
      const b = collate(evRows);
      const feeds = { ...batchFeeds(b, this.graphs.maskMode), ...this.paramFeeds() };
      for (let i = 0; i < warmups; i++) await ev.run(feeds, ['loss']);
      const run = () => timed(() => ev.run(feeds, ['loss']));
      evaluation = { tokens: b.batch * b.seq, seconds: await fastestOf(repeats, run) };
      this.rng.restore(this.state.rng);
    }
    return {
      step,
      evaluation,
      trainBatchTokens: this.firstEpoch.map(padded),
      evalBatchTokens: ev ? evalBatches(this.prepared, this.c).map(padded) : [],
    };
  }

  checkpoint(outputDir: string): void {
    const state = this.state;
    state.rng = this.rng.state();
    saveCheckpoint(
      outputDir,
      { state, params: this.named_(this.params), m: this.named_(this.mom1), v: this.named_(this.mom2) },
      this.c.save_total_limit,
      state.bestStep !== null ? [state.bestStep] : [],
    );
  }

  /** Optimiser steps until totalSteps, early stopping, an abort signal or stopAfterSteps. */
  async run(run: LoopRun): Promise<void> {
    const { c, K } = this;
    const { outputDir, runId, metrics, result } = run;
    const progress = new Progress({ label: 'train', total: this.totalSteps, unit: 'steps', silent: run.quiet });
    progress.update(this.state.step);
    const wallStart = performance.now() - this.state.elapsed * 1000;
    let processSteps = 0;
    while (this.state.step < this.totalSteps) {
      const tStep = performance.now();
      const lr = lrAt(this.state.step, this.sched);
      const micro: Batch[] = [];
      for (let k = 0; k < K; k++) micro.push(this.nextBatch());
      const totalW = micro.reduce((a, b) => a + b.weightSum, 0) || 1;
      let accGrads: Map<string, Float32Array> | undefined;
      let lossNum = 0;
      for (let k = 0; k < K - 1; k++) {
        const b = micro[k]!;
        const out = await this.sessions.grad!.run(
          {
            ...batchFeeds(b, this.graphs.maskMode),
            ...this.paramFeeds(),
            ...this.extraFeeds(b),
            loss_scale: scalar(b.weightSum / totalW),
          },
          ['loss', ...this.graphs.params.map((q) => `grad.${q.name}`)],
        );
        lossNum += lossOf(out) * b.weightSum;
        accGrads ??= new Map(this.graphs.params.map((q) => [q.name, new Float32Array(q.init.length)]));
        for (const q of this.graphs.params) {
          const acc = accGrads.get(q.name)!;
          const gr = out[`grad.${q.name}`]!.data as Float32Array;
          for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + gr[i]!;
        }
      }
      const last = micro[K - 1]!;
      const t = this.state.step + 1;
      const bc1 = 1 - c.adam_beta1 ** t;
      const bc2 = 1 - c.adam_beta2 ** t;
      const feeds: Record<string, HostTensor> = {
        ...batchFeeds(last, this.graphs.maskMode),
        ...this.stateFeeds(),
        ...this.extraFeeds(last),
        loss_scale: scalar(last.weightSum / totalW),
        decay_factor: scalar(1 - lr * c.weight_decay),
        step_size: scalar(lr / bc1),
        bias_correction2_sqrt: scalar(Math.sqrt(bc2)),
      };
      if (K > 1) {
        for (const q of this.graphs.params)
          feeds[`grad_in.${q.name}`] = tensor('float32', q.dims, accGrads!.get(q.name)!);
      }
      // params, moments and accumulated grads are replaced by the outputs: hand their buffers over instead of copying
      const out = await this.sessions.step.run(feeds, undefined, { transfer: true });
      lossNum += lossOf(out) * last.weightSum;
      for (const q of this.graphs.params) {
        this.params.set(q.name, out[`new.${q.name}`]!.data as Float32Array);
        this.mom1.set(q.name, out[`new_exp_avg.${q.name}`]!.data as Float32Array);
        this.mom2.set(q.name, out[`new_exp_avg_sq.${q.name}`]!.data as Float32Array);
      }
      const loss = lossNum / totalW;
      const gradNorm = (out.grad_norm!.data as Float32Array)[0]!;
      if (!Number.isFinite(loss)) {
        throw new LoomError('TRAIN_INVALID', `loss became ${loss} at step ${t}`, {
          hint: 'lower learning_rate, keep max_grad_norm > 0, or check the data for empty targets',
        });
      }
      this.state.step = t;
      processSteps++;
      const tokens = micro.reduce((a, b) => a + b.tokens, 0);
      this.state.tokensSeen += tokens;
      const dt = (performance.now() - tStep) / 1000;
      this.state.elapsed = (performance.now() - wallStart) / 1000;
      result.firstLoss ??= loss;
      result.lastLoss = loss;
      if (t % c.logging_steps === 0 || t === this.totalSteps) {
        const rec = {
          step: t,
          epoch: this.state.epoch + this.state.batchInEpoch / this.batchesPerEpoch,
          split: 'train' as const,
          loss,
          lr,
          grad_norm: gradNorm,
          tokens_per_s: tokens / dt,
          tokens: this.state.tokensSeen,
          rss_mb: Math.round(process.memoryUsage.rss() / 1048576),
          time: new Date().toISOString(),
        };
        metrics.append(rec);
        run.registry?.logMetrics(
          (['loss', 'lr', 'grad_norm', 'tokens_per_s', 'rss_mb'] as const).map((n) => ({
            runId,
            step: t,
            name: n,
            value: rec[n],
          })),
        );
      }
      progress.update(t, { loss: loss.toFixed(4), lr: lr.toExponential(2) });

      let stop = false;
      if (this.sessions.evaluate && c.eval_steps && (t % c.eval_steps === 0 || t === this.totalSteps)) {
        const el = (await this.evaluate())!;
        metrics.append({
          step: t,
          epoch: this.state.epoch,
          split: 'eval',
          eval_loss: el,
          eval_ppl: Math.exp(el),
          time: new Date().toISOString(),
        });
        run.registry?.logMetrics([
          { runId, step: t, split: 'eval', name: 'loss', value: el },
          { runId, step: t, split: 'eval', name: 'ppl', value: Math.exp(el) },
        ]);
        if (this.state.bestEvalLoss === null || el < this.state.bestEvalLoss) {
          this.state.bestEvalLoss = el;
          this.state.bestStep = t;
          this.state.badEvals = 0;
          this.checkpoint(outputDir);
          writeJsonAtomic(join(outputDir, 'checkpoints', 'best.json'), {
            checkpoint: checkpointName(t),
            step: t,
            eval_loss: el,
          });
        } else {
          this.state.badEvals++;
          if (c.early_stopping_patience && this.state.badEvals >= c.early_stopping_patience) {
            stop = true;
            result.earlyStopped = true;
          }
        }
      }
      if (c.save_steps && t % c.save_steps === 0) this.checkpoint(outputDir);
      if (run.signal?.aborted) {
        this.checkpoint(outputDir);
        result.interrupted = true;
        break;
      }
      if (stop || (run.stopAfterSteps !== undefined && processSteps >= run.stopAfterSteps)) {
        if (!stop) {
          this.checkpoint(outputDir);
          result.interrupted = true;
        }
        break;
      }
    }
    progress.done();
  }

  async release(): Promise<void> {
    await this.sessions.step.release();
    await this.sessions.grad?.release();
    await this.sessions.evaluate?.release();
  }
}

function tensor(dtype: HostTensor['dtype'], dims: number[], data: HostTensor['data']): HostTensor {
  return { dtype, dims, data };
}

function scalar(x: number): HostTensor {
  return tensor('float32', [], Float32Array.of(x));
}

function batchFeeds(b: Batch, maskMode: 'none' | 'additive'): Record<string, HostTensor> {
  const f: Record<string, HostTensor> = {
    input_ids: tensor('int64', [b.batch, b.seq], b.inputIds),
    labels: tensor('int64', [b.batch, b.seq], b.targets),
    loss_weights: tensor('float32', [b.batch, b.seq], b.weights),
    position_ids: tensor('int64', [b.batch, b.seq], b.positionIds),
  };
  if (maskMode === 'additive') f.attention_bias = tensor('float32', [b.batch, 1, b.seq, b.seq], b.mask);
  return f;
}

function zeroGrads(ps: readonly ParamInfo[]): Record<string, HostTensor> {
  const f: Record<string, HostTensor> = {};
  for (const q of ps) f[`grad_in.${q.name}`] = tensor('float32', q.dims, new Float32Array(q.init.length));
  return f;
}

function lossOf(out: Record<string, HostTensor>): number {
  return (out.loss!.data as Float32Array)[0]!;
}

/** Padded tokens of a batch (rows × longest row), what a step's cost grows with. */
function padded(rows: readonly PackedRow[]): number {
  return rows.length * Math.max(0, ...rows.map((r) => r.ids.length));
}

/** What pre-flight measured: timed step batches (padded tokens, seconds), one eval batch, every batch's size. */
export interface TimingProbe {
  step: { tokens: number; seconds: number }[];
  evaluation?: { tokens: number; seconds: number };
  trainBatchTokens: number[];
  evalBatchTokens: number[];
}

/** The fastest of `n` timed runs (at least one): on a shared machine one run can land in another process's burst. */
async function fastestOf(n: number, run: () => Promise<number>): Promise<number> {
  let best = await run();
  for (let i = 1; i < n; i++) best = Math.min(best, await run());
  return best;
}
