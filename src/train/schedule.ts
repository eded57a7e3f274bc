/**
 * Learning-rate schedules with the same arithmetic as Hugging Face `transformers.optimization`
 * (`get_constant_schedule_with_warmup`, `get_linear_schedule_with_warmup`, `get_cosine_schedule_with_warmup`,
 * and the `*_with_min_lr` variants), so a run emitted to LLaMA-Factory/TRL follows the same curve.
 * `step` is the number of optimiser steps already taken (HF's `current_step`), 0-based.
 */
export type SchedulerType = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  type: SchedulerType;
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  minLr?: number;
}

/** Warmup steps from `warmup_steps` or `warmup_ratio` (HF: ceil(ratio * total)). */
export function resolveWarmup(totalSteps: number, warmupSteps: number, warmupRatio: number): number {
  if (warmupSteps > 0) return warmupSteps;
  return Math.ceil(warmupRatio * totalSteps);
}

export function lrAt(step: number, o: ScheduleOptions): number {
  const minRate = o.minLr && o.lr > 0 ? o.minLr / o.lr : 0;
  if (step < o.warmupSteps) return (o.lr * step) / Math.max(1, o.warmupSteps);
  if (o.type === 'constant') return o.lr;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  if (o.type === 'linear') {
    const f = Math.max(0, (o.totalSteps - step) / span);
    return o.lr * (minRate + (1 - minRate) * f);
  }
  const progress = Math.min(1, (step - o.warmupSteps) / span);
  const f = Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
  return o.lr * (minRate + (1 - minRate) * f);
}
