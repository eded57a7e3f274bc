import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';

// The test runner itself (scripts/run-tests.mjs + scripts/test-runner/), run as a subprocess on a throw-away
// project whose test files are written here, so every outcome is known in advance: which files pass, which fail,
// which one kills its shard, which one belongs to the end-to-end tier.
const RUNNER = resolve('scripts/run-tests.mjs');
// NODE_TEST_CONTEXT: set by the node --test running this file; a runner that inherits it talks node:test's
// child protocol instead of its own.
const { LOOM_TEST_SHARDS: _shards, NODE_TEST_CONTEXT: _ctx, ...ENV } = process.env;
let work: string;

const PASS = `import assert from 'node:assert/strict';
import { test } from 'node:test';
test('adds', () => assert.equal(1 + 1, 2));
test('concatenates', () => assert.equal('a' + 'b', 'ab'));
`;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'loom-runner-'));
  mkdirSync(join(work, 'test', 'unit'), { recursive: true });
  // ESM, as in the repo: tsx compiles .ts in a folder without it to CommonJS, whose require('node:test') the
  // shard's resolve hook never sees.
  writeFileSync(join(work, 'package.json'), '{ "type": "module" }\n');
  const file = (name: string, text: string) => writeFileSync(join(work, 'test', name), text);
  file('unit/a.test.ts', PASS);
  file(
    'unit/b.test.ts',
    `import assert from 'node:assert/strict';
import { test } from 'node:test';
test('holds', () => assert.ok(true));
test('is wrong on purpose', () => assert.equal(2 + 2, 5));
`,
  );
  // Kills its shard: the runner must blame this file and still run the files after it in a fresh shard.
  file('unit/c.test.ts', `import { test } from 'node:test';\ntest('exits', () => process.exit(7));\n`);
  file('unit/d.test.ts', PASS);
  // A top-level hook of one file must not run for another file's tests in the same shard.
  file(
    'unit/e.test.ts',
    `import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
let mine = 0;
beforeEach(() => { mine++; (globalThis as Record<string, unknown>).__loomHookRuns = ((globalThis as Record<string, unknown>).__loomHookRuns as number ?? 0) + 1; });
test('sees its own hook', () => assert.equal(mine, 1));
`,
  );
  file(
    'unit/f.test.ts',
    `import assert from 'node:assert/strict';
import { test } from 'node:test';
test('no other file hook ran for me', () => assert.equal((globalThis as Record<string, unknown>).__loomHookRuns, 1));
`,
  );
  file('unit/g.e2e.test.ts', PASS);
});
after(() => rmSync(work, { recursive: true, force: true }));

function run(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [RUNNER, ...args], {
    cwd: work,
    encoding: 'utf8',
    env: ENV,
    timeout: 120_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('a passing file passes: exit 0, its tests counted', () => {
  const r = run('unit/a.test');
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /✔ test\/unit\/a\.test\.ts \(2 tests/);
  assert.match(r.out, /2 tests in 1 files — 2 passed, 0 failed/);
});

test('the fast tier: a failing file and a file that kills its shard fail the run; the rest still run; e2e files are left out', () => {
  // One shard, so the files run in path order and c.test.ts kills the shard with d, e and f still to go.
  const r = run('--fast', '--shards=1');
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /✔ test\/unit\/a\.test\.ts/);
  assert.match(r.out, /✖ test\/unit\/b\.test\.ts \(2 tests/);
  assert.match(r.out, /is wrong on purpose/);
  assert.match(r.out, /✖ test\/unit\/c\.test\.ts: the shard exited \(code 7\)/);
  assert.match(r.out, /✔ test\/unit\/d\.test\.ts .*restart 1/);
  assert.match(r.out, /✔ test\/unit\/e\.test\.ts/);
  assert.match(r.out, /✔ test\/unit\/f\.test\.ts/, "e.test.ts's beforeEach ran for f.test.ts's test");
  assert.doesNotMatch(r.out, /g\.e2e/);
  assert.match(r.out, /unit tier: \d+ tests in 6 files — 7 passed, 2 failed/);
});

test('all tiers: the end-to-end file runs too (a process of its own); a substring filter picks files', () => {
  const r = run('a.test', 'g.e2e');
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /per-process: 1 files/);
  assert.match(r.out, /all tiers: 4 tests in 2 files — 4 passed, 0 failed/);
});

test('no file matching the filter is an error, not a silent pass', () => {
  const r = run('no-such-file');
  assert.equal(r.code, 1);
  assert.match(r.out, /no test files matched/);
});
