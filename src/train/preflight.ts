import { totalmem } from 'node:os';
import type { TrainConfig } from '../config/train.ts';
import { LoomError } from '../core/errors.ts';
import type { LlamaConfig } from '../models/config.ts';
import type { TrainGraphs } from './graph.ts';
import type { TimingProbe, TrainLoop } from './loop.ts';

/**
 * Training stage 2, pre-flight: parameter counts, data and schedule figures, a peak-memory estimate and a time
 * estimate from a few measured batches (after warm-up, fitted against batch size), printed before the first
 * optimiser step and refused when the memory estimate exceeds this machine's memory.
 */
export interface Preflight {
  totalParams: number;
  trainableParams: number;
  trainableFraction: number;
  trainExamples: number;
  evalExamples: number;
  droppedRows: number;
  truncatedRows: number;
  batchesPerEpoch: number;
  stepsPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
  tokensPerEpoch: number;
  estimatedPeakBytes: number;
  availableBytes: number;
  /** Median seconds of the timed probe batches (after two warm-up runs). */
  measuredStepSeconds: number;
  estimatedEpochSeconds: number;
  /** Whole remaining run: optimiser steps (every micro-batch) plus evaluations, from the fitted timing. */
  estimatedRunSeconds: number;
  quant?: { fp32Bytes: number; quantBytes: number; savedBytes: number; modules: number };
}

/** Measures one step and assembles the pre-flight report; throws TRAIN_RESOURCES when the estimate does not fit. */
export async function preflight(
  loop: TrainLoop,
  say: ((line: string) => void) | undefined,
  probeKind: 'full' | 'quick' = 'full',
): Promise<Preflight> {
  const { c, graphs, prepared: p } = loop;
  const probe = await loop.measure(probeKind === 'quick' ? { samples: 1, warmups: 0, repeats: 1 } : undefined);
  const timing = estimateRun(probe, {
    remainingSteps: loop.totalSteps - loop.state.step,
    firstStep: loop.state.step,
    totalSteps: loop.totalSteps,
    microBatches: c.gradient_accumulation_steps,
    evalSteps: loop.canEvaluate() ? (c.eval_steps ?? 0) : 0,
    initialEval: loop.canEvaluate() && loop.state.step === 0,
  });
  const sessions = loop.sessionCount();
  const pre: Preflight = {
    totalParams: graphs.totalParams,
    trainableParams: graphs.trainableParams,
    trainableFraction: graphs.trainableParams / graphs.totalParams,
    trainExamples: p.train.length,
    evalExamples: p.evalRows.length,
    droppedRows: p.dropped,
    truncatedRows: p.truncated,
    batchesPerEpoch: loop.batchesPerEpoch,
    stepsPerEpoch: loop.stepsPerEpoch,
    totalSteps: loop.totalSteps,
    warmupSteps: loop.sched.warmupSteps,
    tokensPerEpoch: loop.tokensPerEpoch(),
    estimatedPeakBytes: estimatePeak(p.model, c, graphs, sessions),
    availableBytes: totalmem(),
    measuredStepSeconds: timing.medianBatchSeconds,
    estimatedEpochSeconds: timing.epochSeconds,
    estimatedRunSeconds: timing.runSeconds,
    quant: graphs.quant ? { ...graphs.quant, savedBytes: graphs.quant.fp32Bytes - graphs.quant.quantBytes } : undefined,
  };
  say?.(formatPreflight(c, pre));
  if (pre.estimatedPeakBytes > pre.availableBytes) {
    throw new LoomError(
      'TRAIN_RESOURCES',
      `estimated peak memory ${gb(pre.estimatedPeakBytes)} exceeds this machine's ${gb(pre.availableBytes)}`,
      {
        hint: 'lower per_device_train_batch_size or cutoff_len, use lora/qlora, or emit the job for a GPU trainer (--emit llamafactory)',
      },
    );
  }
  return pre;
}

/** Least-squares t = a + c·tokens over the probe batches, a and c kept non-negative. */
export function fitBatchTime(samples: readonly { tokens: number; seconds: number }[]): { a: number; c: number } {
  const n = samples.length;
  const mt = samples.reduce((x, s) => x + s.tokens, 0) / n;
  const ms = samples.reduce((x, s) => x + s.seconds, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const s of samples) {
    sxx += (s.tokens - mt) ** 2;
    sxy += (s.tokens - mt) * (s.seconds - ms);
  }
  // All batches (nearly) the same size: one number per token is all the data can say.
  if (n < 2 || sxx <= (0.1 * mt) ** 2 * n) return { a: 0, c: ms / mt };
  const c = sxy / sxx;
  const a = ms - c * mt;
  if (c < 0) return { a: ms, c: 0 };
  if (a < 0)
    return {
      a: 0,
      c: samples.reduce((x, s) => x + s.seconds * s.tokens, 0) / samples.reduce((x, s) => x + s.tokens ** 2, 0),
    };
  return { a, c };
}

export interface RunShape {
  remainingSteps: number;
  firstStep: number;
  totalSteps: number;
  microBatches: number;
  /** 0 = no periodic evaluation. */
  evalSteps: number;
  initialEval: boolean;
}

/**
 * Time for the rest of the run from the probe: every micro-batch of every remaining step (first-epoch batch sizes
 * taken cyclically; a grad-only micro-batch costs about what a step does), plus each evaluation (the eval batch's
 * time per padded token times every eval batch), counted the way the loop schedules them.
 */
export function estimateRun(
  probe: TimingProbe,
  shape: RunShape,
): { medianBatchSeconds: number; epochSeconds: number; runSeconds: number } {
  const fit = fitBatchTime(probe.step);
  const t = (tokens: number) => fit.a + fit.c * tokens;
  const sizes = probe.trainBatchTokens;
  const epochSeconds = sizes.reduce((x, n) => x + t(n), 0);
  const batches = shape.remainingSteps * shape.microBatches;
  let train = Math.floor(batches / sizes.length) * epochSeconds;
  for (let i = 0; i < batches % sizes.length; i++) train += t(sizes[i]!);
  let evals = shape.initialEval ? 1 : 0;
  if (shape.evalSteps > 0) {
    for (let s = shape.firstStep + 1; s <= shape.totalSteps; s++)
      if (s % shape.evalSteps === 0 || s === shape.totalSteps) evals++;
  }
  const e = probe.evaluation;
  const perEval = e ? probe.evalBatchTokens.reduce((x, n) => x + (e.seconds * n) / e.tokens, 0) : 0;
  const sorted = probe.step.map((s) => s.seconds).sort((x, y) => x - y);
  return {
    medianBatchSeconds: sorted[Math.floor(sorted.length / 2)] ?? 0,
    epochSeconds,
    runSeconds: train + evals * perEval,
  };
}

/**
 * Peak memory estimate, calibrated on the SmolLM2-135M bench (batch 4 x 256, LoRA 8.0 GB / full 13.2 GB measured):
 * frozen weights once in JS and about twice per ONNX session (initializers + MLAS pre-packed copies), saved
 * activations per layer (hidden-size and MLP tensors, attention scores/probabilities), the logits and their
 * gradient chain, trainable tensors with AdamW state on both sides of the JS/ORT boundary, and 25 % arena slack.
 */
function estimatePeak(m: LlamaConfig, c: TrainConfig, graphs: TrainGraphs, sessions: number): number {
  const T = c.cutoff_len;
  const B = c.batch_tokens ? Math.max(1, Math.floor(c.batch_tokens / T)) : c.per_device_train_batch_size;
  const H = m.hiddenSize;
  const frozen =
    graphs.totalParams - (c.finetuning_type === 'full' || c.finetuning_type === 'freeze' ? 0 : graphs.trainableParams);
  const baseBytes = graphs.quant ? frozen * 4 - graphs.quant.fp32Bytes + graphs.quant.quantBytes : frozen * 4;
  const weights = baseBytes * (1 + 2 * sessions);
  const perLayerAct = B * T * (16 * H + 5 * m.intermediateSize) * 4 + B * m.numHeads * T * T * 4 * 4;
  const logits = B * T * m.vocabSize * 4 * 5;
  const state = graphs.trainableParams * 4 * 7;
  return Math.round((weights + m.numLayers * perLayerAct + logits + state) * 1.25);
}

function gb(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

function formatPreflight(c: TrainConfig, p: Preflight): string {
  const lines = [
    `pre-flight: ${c.stage}/${c.finetuning_type}`,
    `  parameters       total ${p.totalParams.toLocaleString('en-US')}, trainable ${p.trainableParams.toLocaleString('en-US')} (${(p.trainableFraction * 100).toFixed(3)} %)`,
    `  data             ${p.trainExamples} train rows, ${p.evalExamples} eval rows, ${p.droppedRows} dropped by cutoff_len, ${p.truncatedRows} truncated`,
    `  schedule         ${p.batchesPerEpoch} batches/epoch, ${p.stepsPerEpoch} steps/epoch, ${p.totalSteps} steps total, ${p.warmupSteps} warmup`,
    `  memory (est.)    peak ${gb(p.estimatedPeakBytes)} of ${gb(p.availableBytes)}`,
    `  time (measured)  ${p.measuredStepSeconds.toFixed(3)} s per batch (median of the probe, after warm-up) → ~${p.estimatedEpochSeconds.toFixed(1)} s per epoch (${p.tokensPerEpoch} tokens), ~${p.estimatedRunSeconds.toFixed(1)} s for the run with evaluations`,
  ];
  if (p.quant) {
    lines.push(
      `  qlora            ${p.quant.modules} projections as 4-bit blocks: ${gb(p.quant.fp32Bytes)} fp32 → ${gb(p.quant.quantBytes)} (saves ${gb(p.quant.savedBytes)})`,
    );
  }
  return lines.join('\n');
}

/** `time: estimated 14.1 s, measured 15.2 s (measured/estimated 1.08)` for run summaries. */
export function formatTiming(t: { estimatedSeconds: number; measuredSeconds: number }): string {
  return `time: estimated ${t.estimatedSeconds.toFixed(1)} s by pre-flight, measured ${t.measuredSeconds.toFixed(1)} s (measured/estimated ${(t.measuredSeconds / Math.max(t.estimatedSeconds, 1e-9)).toFixed(2)})`;
}
