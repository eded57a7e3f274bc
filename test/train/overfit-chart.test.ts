import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectOverfitting, lossChartHtml, type MetricRecord } from '../../src/train/metrics.ts';

// Synthetic curves written out by hand (no training): train loss every step, an evaluation every 10 steps.
const time = '2026-01-01T00:00:00Z';
function curves(steps: number, trainAt: (s: number) => number, evalAt: (s: number) => number): MetricRecord[] {
  const out: MetricRecord[] = [];
  for (let s = 1; s <= steps; s++) {
    out.push({ step: s, epoch: 0, split: 'train', loss: trainAt(s), lr: 1e-3 * (1 - s / (steps + 1)), time });
    if (s % 10 === 0) out.push({ step: s, epoch: 0, split: 'eval', eval_loss: evalAt(s), time });
  }
  return out;
}
const falling = (s: number) => 3 * Math.exp(-s / 40) + 0.5;

test('validation loss turning up while train loss falls is flagged from the best evaluation', () => {
  // Eval: 2.0 at step 40 (the minimum), rising by 0.05 per evaluation after it: steps 50..80 are 4 evaluations.
  const r = curves(80, falling, (s) => 2 + Math.abs(s - 40) * 0.005);
  const f = detectOverfitting(r);
  assert.ok(f, 'flagged');
  assert.equal(f.fromStep, 40);
  assert.equal(f.toStep, 80);
  assert.equal(f.evals, 4);
  assert.equal(f.evalBest, 2);
  assert.ok(Math.abs(f.evalLast - 2.2) < 1e-12);
  assert.ok(f.trainAtLast < f.trainAtBest);
});

test('no flag when both losses fall, on a noisy plateau, on divergence, or with too few evaluations', () => {
  assert.equal(detectOverfitting(curves(80, falling, (s) => 3 - s / 100)), undefined, 'both falling');
  // Plateau with ±0.3 % alternating noise: below the 1 % rise needed.
  assert.equal(
    detectOverfitting(curves(120, falling, (s) => 2 * (1 + ((s / 10) % 2 ? 0.003 : -0.003)))),
    undefined,
    'noisy plateau',
  );
  // Train loss rising as well: the run is diverging, not overfitting.
  assert.equal(
    detectOverfitting(
      curves(
        80,
        (s) => 1 + s / 50,
        (s) => 2 + Math.abs(s - 40) * 0.005,
      ),
    ),
    undefined,
    'diverging',
  );
  // Only two evaluations after the minimum (steps 50, 60): not yet three.
  assert.equal(detectOverfitting(curves(60, falling, (s) => 2 + Math.abs(s - 40) * 0.005)), undefined, 'too few');
  assert.ok(
    detectOverfitting(
      curves(60, falling, (s) => 2 + Math.abs(s - 40) * 0.005),
      2,
    ),
    'two when asked for two',
  );
});

test('the loss chart has axis labels, the LR curve on its own axis, CJK fonts and the overfitting band', () => {
  const html = lossChartHtml(
    curves(80, falling, (s) => 2 + Math.abs(s - 40) * 0.005),
    '训练 — run',
  );
  for (const font of ['"Noto Sans CJK SC"', '"PingFang SC"', '"Microsoft YaHei"'])
    assert.ok(html.includes(font), `font stack names ${font}`);
  assert.ok(html.indexOf('"Noto Sans CJK SC"') < html.indexOf('sans-serif'), 'CJK fonts before the generic family');
  assert.match(html, /class="axis-x"[^>]*>optimiser step</);
  assert.match(html, /class="axis-y"[^>]*>loss/);
  assert.match(html, /class="axis-lr"[^>]*>learning rate</);
  // The LR polyline has one point per logged train step, and its first point (largest LR) is at the top.
  const lr = /<polyline class="lr"[^>]*points="([^"]+)"/.exec(html);
  assert.ok(lr, 'LR polyline');
  const pts = lr[1]!.split(' ').map((p) => p.split(',').map(Number));
  assert.equal(pts.length, 80);
  assert.equal(pts[0]![1], 20, 'the largest LR sits on the top edge (pad.t = 20)');
  assert.ok(
    pts.every((p, i) => i === 0 || p[1]! >= pts[i - 1]![1]!),
    'a decaying LR draws downwards',
  );
  assert.match(html, /<rect class="overfit"/);
  assert.match(html, /overfitting: validation loss rose 10\.0 % from its best 2\.0000 at step 40/);
  assert.ok(html.includes('过拟合'));
  // A healthy run has no band and no warning.
  const ok = lossChartHtml(
    curves(80, falling, (s) => 3 - s / 100),
    'run',
  );
  assert.ok(!ok.includes('class="overfit"') && !ok.includes('overfitting:'));
});
