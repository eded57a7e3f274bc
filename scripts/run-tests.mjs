#!/usr/bin/env node
// Node 20's test runner has no glob support, so we collect test files here and hand them over.
// Usage: node scripts/run-tests.mjs [--fast] [substring filter...]
//   --fast  unit tests only (`npm run test:fast`): skips the end-to-end and subprocess tests below.
//   `npm test` (what CI runs) runs everything.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

// End-to-end and subprocess tests: a file named *.e2e.test.ts, or one of these (they spawn the CLI, train models
// through several stages or kill processes, and take most of the suite's time). New ones: name them *.e2e.test.ts.
const E2E = [
  'test/quickstart/',
  'test/train/resume.test.ts',
  'test/data/cli.test.ts',
  'test/generate/chat-cli.test.ts',
  'test/serve/ops.test.ts',
  'test/models/safetensors-memory.test.ts',
  'test/eval/suite-features.test.ts',
  'test/train/emit.test.ts',
  'test/cli/',
  // real peers loading our artefacts (llama.cpp, transformers.js): seconds each, kept out of the unit tier
  'test/export/gguf-q4km.test.ts',
  'test/export/gguf-llama-cpp.test.ts',
  'test/export/onnx-transformers-js.test.ts',
  'test/serve/gguf.test.ts',
  'test/data/pipeline-example.test.ts',
];
const isE2e = (f) => f.endsWith('.e2e.test.ts') || E2E.some((p) => f.split('\\').join('/').startsWith(p));

const args = process.argv.slice(2);
const fast = args.includes('--fast');
const filters = args.filter((a) => a !== '--fast');
const files = walk('test', [])
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .filter((f) => !fast || !isE2e(f))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Node 20 runs test files one at a time on 2 cores (availableParallelism - 1); unit files are short and mostly
// start-up (tsx), so the fast tier runs one per core. The full suite keeps one at a time: its end-to-end files
// train models and spawn servers, and two of them at once on 2 cores only trade places.
const concurrency = fast ? Math.max(2, availableParallelism()) : Math.max(1, availableParallelism() - 1);
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...files], {
  stdio: 'inherit',
  env: { ...process.env, LOOM_TEST: '1' },
});
process.exit(r.status ?? 1);
