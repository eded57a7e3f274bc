import { totalmem } from 'node:os';
import type { TrainConfig } from '../config/train.ts';
import { LoomError } from '../core/errors.ts';
import type { LlamaConfig } from '../models/config.ts';
import type { TrainGraphs } from './graph.ts';
import type { TrainLoop } from './loop.ts';

/**
 * Training stage 2, pre-flight: parameter counts, data and schedule figures, a peak-memory estimate and one measured
 * step, printed before the first optimiser step and refused when the estimate exceeds this machine's memory.
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
  measuredStepSeconds: number;
  estimatedEpochSeconds: number;
  quant?: { fp32Bytes: number; quantBytes: number; savedBytes: number; modules: number };
}

/** Measures one step and assembles the pre-flight report; throws TRAIN_RESOURCES when the estimate does not fit. */
export async function preflight(loop: TrainLoop, say: ((line: string) => void) | undefined): Promise<Preflight> {
  const { c, graphs, prepared: p } = loop;
  const measured = await loop.measureStep();
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
    measuredStepSeconds: measured,
    estimatedEpochSeconds: measured * loop.batchesPerEpoch,
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

export function gb(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

export function formatPreflight(c: TrainConfig, p: Preflight): string {
  const lines = [
    `pre-flight: ${c.stage}/${c.finetuning_type}`,
    `  parameters       total ${p.totalParams.toLocaleString('en-US')}, trainable ${p.trainableParams.toLocaleString('en-US')} (${(p.trainableFraction * 100).toFixed(3)} %)`,
    `  data             ${p.trainExamples} train rows, ${p.evalExamples} eval rows, ${p.droppedRows} dropped by cutoff_len, ${p.truncatedRows} truncated`,
    `  schedule         ${p.batchesPerEpoch} batches/epoch, ${p.stepsPerEpoch} steps/epoch, ${p.totalSteps} steps total, ${p.warmupSteps} warmup`,
    `  memory (est.)    peak ${gb(p.estimatedPeakBytes)} of ${gb(p.availableBytes)}`,
    `  time (measured)  ${p.measuredStepSeconds.toFixed(3)} s per batch → ~${p.estimatedEpochSeconds.toFixed(1)} s per epoch (${p.tokensPerEpoch} tokens)`,
  ];
  if (p.quant) {
    lines.push(
      `  qlora            ${p.quant.modules} projections as 4-bit blocks: ${gb(p.quant.fp32Bytes)} fp32 → ${gb(p.quant.quantBytes)} (saves ${gb(p.quant.savedBytes)})`,
    );
  }
  return lines.join('\n');
}
