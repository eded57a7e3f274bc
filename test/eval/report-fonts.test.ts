import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderComparison } from '../../src/eval/report/compare.ts';
import { renderRunReport } from '../../src/eval/report/html.ts';
import type { RunResult } from '../../src/eval/suite/results.ts';

// Chinese must not render as boxes on a machine whose default sans font has no CJK glyphs: every eval report names
// the CJK fonts of Linux, macOS and Windows before the generic family.
function assertCjkFonts(html: string): void {
  for (const font of ['"Noto Sans CJK SC"', '"PingFang SC"', '"Microsoft YaHei"']) assert.ok(html.includes(font), font);
  const css = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
  const body = /body\{font:[^;}]*/.exec(css)![0];
  assert.ok(body.indexOf('"Noto Sans CJK SC"') < body.indexOf('sans-serif'), body);
}

test('eval run and comparison reports name CJK fonts in their font stack', () => {
  const run: RunResult = {
    runId: 'r1',
    suite: '客服',
    suitePath: '/x/suite.yaml',
    configHash: 'abc',
    started: '2026-01-01T00:00:00Z',
    finished: '2026-01-01T00:01:00Z',
    models: [{ id: 'm', modelId: 'endpoint:m', kind: 'endpoint' }],
    tasks: [],
    usage: {},
    cache: { hits: 0, misses: 0 },
    errors: [],
  };
  const html = renderRunReport(run);
  assertCjkFonts(html);
  assert.ok(html.includes('客服'));
  assertCjkFonts(renderComparison([], 'Compare 一 → 二'));
});
