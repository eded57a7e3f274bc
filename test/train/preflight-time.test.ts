import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { estimateRun, fitBatchTime, formatTiming } from '../../src/train/preflight.ts';
import { runTraining } from '../../src/train/trainer.ts';
import { cfg, tinyProject } from './helpers.ts';

const close = (a: number, b: number, msg = '') => assert.ok(Math.abs(a - b) < 1e-9, `${msg} ${a} vs ${b}`);

test('fitBatchTime recovers t = a + c·tokens, and falls back to a per-token rate for equal batches', () => {
  // t = 0.01 + 2e-5·tokens, written out at four sizes.
  const f = fitBatchTime([1000, 2000, 4000, 500].map((n) => ({ tokens: n, seconds: 0.01 + 2e-5 * n })));
  close(f.a, 0.01, 'a');
  close(f.c, 2e-5, 'c');
  const eq = fitBatchTime([
    { tokens: 1000, seconds: 0.03 },
    { tokens: 1000, seconds: 0.05 },
  ]);
  close(eq.a, 0);
  close(eq.c, 0.04 / 1000);
  // Time falling with size (noise): no negative slope, the mean per batch.
  const neg = fitBatchTime([
    { tokens: 1000, seconds: 0.05 },
    { tokens: 3000, seconds: 0.03 },
  ]);
  close(neg.c, 0);
  close(neg.a, 0.04);
});

test('estimateRun counts every micro-batch and every evaluation the loop will run', () => {
  const probe = {
    step: [1000, 2000].map((n) => ({ tokens: n, seconds: 0.01 + 1e-5 * n })),
    evaluation: { tokens: 500, seconds: 0.005 },
    trainBatchTokens: [1000, 2000, 1000], // one epoch: 0.02 + 0.03 + 0.02 = 0.07 s
    evalBatchTokens: [500, 1000], // 0.005 + 0.010 = 0.015 s per evaluation
  };
  const r = estimateRun(probe, {
    remainingSteps: 5,
    firstStep: 0,
    totalSteps: 5,
    microBatches: 2, // 10 batches: 3 epochs (0.21 s) + the first batch again (0.02 s)
    evalSteps: 2, // evaluations after steps 2, 4 and 5, plus the initial one
    initialEval: true,
  });
  close(r.epochSeconds, 0.07);
  close(r.runSeconds, 0.23 + 4 * 0.015);
  assert.equal(r.medianBatchSeconds, 0.03);
  assert.equal(
    formatTiming({ estimatedSeconds: 10, measuredSeconds: 12 }),
    'time: estimated 10.0 s by pre-flight, measured 12.0 s (measured/estimated 1.20)',
  );
});

const { dir } = tinyProject({ rows: 32 });
after(() => rmSync(dir, { recursive: true, force: true }));

test('a real run reports the pre-flight estimate beside the measured loop time', async (t) => {
  // Accuracy is a speed figure, so it is measured, not asserted: the quickstart prints measured/estimated for its
  // two stages and docs/train.md records them. A timing band here failed CI on a loaded machine. What a test can
  // check is that the figure exists and is a real duration; the accounting itself is pinned by estimateRun above.
  const r = await runTraining({
    config: cfg({
      finetuning_type: 'lora',
      max_steps: 40,
      eval_dataset: 'eval.jsonl',
      eval_steps: 10,
      output_dir: 'out-time',
    }),
    baseDir: dir,
    quiet: true,
    threads: 1,
  });
  const timing = r.timing;
  assert.ok(timing, 'runTraining returns timing');
  assert.ok(Number.isFinite(timing.estimatedSeconds) && timing.estimatedSeconds > 0, `${timing.estimatedSeconds}`);
  assert.ok(Number.isFinite(timing.measuredSeconds) && timing.measuredSeconds > 0, `${timing.measuredSeconds}`);
  assert.equal(r.preflight.estimatedRunSeconds, timing.estimatedSeconds);
  t.diagnostic(formatTiming(timing));
});

test("the quick probe (TrainJob.probe, used by the training tests) changes no weight: dropout's stream is restored", async () => {
  // Other test files train with probe: 'quick' to spare the full probe's warm-up runs; what they prove about
  // the trained weights holds for the default probe only if the probe leaves the run alone.
  const run = (probe: 'full' | 'quick') =>
    runTraining({
      config: cfg({ finetuning_type: 'lora', lora_dropout: 0.1, max_steps: 3, output_dir: `out-probe-${probe}` }),
      baseDir: dir,
      quiet: true,
      threads: 1,
      probe,
    });
  const full = await run('full');
  const quick = await run('quick');
  assert.ok(full.params.length > 0);
  full.params.forEach((p, i) => {
    const q = quick.params[i]!;
    assert.equal(q.name, p.name);
    assert.deepEqual(q.data, p.data, `${p.name} differs between the full and the quick probe`);
  });
  assert.equal(full.firstLoss, quick.firstLoss);
  assert.equal(full.lastLoss, quick.lastLoss);
});
