import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lrAt, resolveWarmup } from '../../src/train/schedule.ts';

// Reference values written out from the formulas of transformers.optimization (get_*_schedule_with_warmup):
// warmup: lr * s / w; linear: lr * (T - s) / (T - w); cosine: lr * 0.5 * (1 + cos(pi * (s - w) / (T - w)));
// cosine_with_min_lr: factor * (1 - min_lr/lr) + min_lr/lr.
const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('warmup then cosine (HF get_cosine_schedule_with_warmup)', () => {
  const o = { type: 'cosine' as const, lr: 1e-3, warmupSteps: 10, totalSteps: 110 };
  close(lrAt(0, o), 0);
  close(lrAt(5, o), 5e-4);
  close(lrAt(10, o), 1e-3);
  close(lrAt(60, o), 5e-4); // half way: cos(pi/2) = 0
  close(lrAt(35, o), 1e-3 * 0.5 * (1 + Math.SQRT1_2)); // quarter: cos(pi/4)
  close(lrAt(110, o), 0);
});

test('linear decay and constant with warmup', () => {
  const lin = { type: 'linear' as const, lr: 2e-4, warmupSteps: 4, totalSteps: 20 };
  close(lrAt(2, lin), 1e-4);
  close(lrAt(12, lin), 1e-4); // (20-12)/(20-4) = 0.5
  close(lrAt(20, lin), 0);
  const con = { type: 'constant' as const, lr: 3e-4, warmupSteps: 3, totalSteps: 20 };
  close(lrAt(1, con), 1e-4);
  close(lrAt(15, con), 3e-4);
});

test('min_lr floors cosine at min_lr (cosine_with_min_lr)', () => {
  const o = { type: 'cosine' as const, lr: 1e-3, warmupSteps: 0, totalSteps: 100, minLr: 1e-4 };
  close(lrAt(100, o), 1e-4);
  close(lrAt(50, o), 0.5 * 0.9e-3 + 1e-4);
});

test('warmup_ratio rounds up like HF get_warmup_steps', () => {
  assert.equal(resolveWarmup(105, 0, 0.1), 11);
  assert.equal(resolveWarmup(100, 7, 0), 7);
});
