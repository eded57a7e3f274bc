#!/usr/bin/env node
// Runs the test suite in two tiers (docs/architecture.md, "Tests").
//   node scripts/run-tests.mjs [--fast] [--isolate] [--shards=N] [--verbose] [--write-timings] [substring...]
//   --fast           unit tests only (`npm run test:fast`); without it, everything (`npm test`, what CI runs)
//   --isolate        every file in a process of its own (the old way; slower, for telling a leak from a bug)
//   --shards=N       unit shards to run side by side (default: one per core)
//   --verbose        print every test's output, not only a failing file's
//   --write-timings  store this run's per-file times in scripts/test-timings.json (used to balance the shards)
//   substring...     only the test files whose path contains one of them
// Test files are found under ./test of the current folder; the runner's own parts and tsx resolve from this
// script's place, so test/scripts/run-tests.e2e.test.ts can run it on a throw-away project. The totals line gives
// wall seconds and CPU seconds of the runner and every process it waited for (Linux): the CPU figure does not
// depend on how busy the machine is, the wall figure does.
//
// Unit files run in a few long-lived shards (scripts/test-runner/shard.mjs): one Node process per core with tsx,
// onnxruntime and src/ loaded once, each running its share of the files one after another. Starting a tsx +
// onnxruntime process per file cost more CPU than most unit files' tests. Each file still gets its own scope
// for hooks (scripts/test-runner/node-test-shim.mjs) and a timeout; a file that crashes or hangs its shard is
// reported as failed and the shard's remaining files run in a fresh one. End-to-end, subprocess and peer tests,
// and the few unit files listed in ISOLATED, keep a process per file (node --test), as before.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MARK } from './test-runner/protocol.mjs';

const here = (rel) => fileURLToPath(new URL(rel, import.meta.url));
const TSX = import.meta.resolve('tsx');

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p.split('\\').join('/'));
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
const isE2e = (f) => f.endsWith('.e2e.test.ts') || E2E.some((p) => f.startsWith(p));

// Unit files that need a process of their own, each with the reason. They stay in the unit tier (`--fast` runs
// them), one process per file after the shards.
const ISOLATED = {
  // (none yet)
};

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
const fast = flag('--fast');
const isolate = flag('--isolate');
const verbose = flag('--verbose');
const writeTimings = flag('--write-timings');
const filters = args.filter((a) => !a.startsWith('--'));
const files = walk('test', [])
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .filter((f) => !fast || !isE2e(f))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

// CausalLM caches the ONNX models it builds for a model folder (src/generate/session-cache.ts): the suite's go to a
// folder of its own, removed at the end, not to the user's ~/.cache/loom/sessions.
const sessionCache = process.env.LOOM_SESSION_CACHE ? undefined : mkdtempSync(join(tmpdir(), 'loom-test-sessions-'));
const env = { ...process.env, LOOM_TEST: '1', ...(sessionCache ? { LOOM_SESSION_CACHE: sessionCache } : {}) };
// Per file: generous for a loaded 2-core machine (the slowest unit file takes ~10 s idle), short enough that a
// hung test cannot hold the tier for long. A shard that sends nothing for this long plus a margin is killed.
const FILE_TIMEOUT_MS = Number(process.env.LOOM_TEST_FILE_TIMEOUT_MS ?? 180_000);
const STALL_MS = FILE_TIMEOUT_MS + 60_000;
const TIMINGS = 'scripts/test-timings.json';

const sharded = isolate ? [] : files.filter((f) => !isE2e(f) && !(f in ISOLATED));
const perProcess = files.filter((f) => !sharded.includes(f));
const started = Date.now();
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

const totals = { tests: 0, pass: 0, fail: 0, skip: 0, todo: 0 };
const failures = []; // { file, what, error }
const fileMs = {};
const startup = []; // { bootMs, importMs } per shard start

// ---- unit shards ---------------------------------------------------------------------------------------------

function loadTimings() {
  if (!existsSync(TIMINGS)) return {};
  try {
    return JSON.parse(readFileSync(TIMINGS, 'utf8'));
  } catch {
    return {};
  }
}

/** Longest-first greedy split by last measured time, so the shards finish together. */
function balance(list, n) {
  const known = loadTimings();
  const values = Object.values(known).sort((a, b) => a - b);
  const typical = values.length > 0 ? values[Math.floor(values.length / 2)] : 1000;
  const cost = (f) => known[f] ?? typical;
  const shards = Array.from({ length: n }, () => ({ files: [], cost: 0 }));
  for (const f of [...list].sort((a, b) => cost(b) - cost(a))) {
    const s = shards.reduce((min, x) => (x.cost < min.cost ? x : min));
    s.files.push(f);
    s.cost += cost(f);
  }
  // Within a shard keep path order: a failure then reads like the file tree.
  return shards.filter((s) => s.files.length > 0).map((s) => s.files.sort());
}

const indent = (text, pad = '    ') => text.replace(/^/gm, pad);

function runShard(shardFiles, label) {
  return new Promise((resolveShard) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        TSX,
        '--import',
        here('./test-runner/register.mjs'),
        `--test-reporter=${here('./test-runner/reporter.mjs')}`,
        '--test-force-exit',
        here('./test-runner/shard.mjs'),
        String(FILE_TIMEOUT_MS),
        ...shardFiles,
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const done = new Set();
    const counts = new Map(); // file → { tests, fail }
    const output = new Map(); // file → captured lines
    let loading = null;
    let running = null; // file now running
    let runningTest = null;
    let ended = false;
    let lastEvent = Date.now();
    let killedForStall = false;
    let failedHere = false;
    let begun = false; // a file began running (before that, the shard is loading files)

    const keep = (lineText) => {
      const key = running ?? loading ?? '(shard)';
      if (verbose) process.stdout.write(`${lineText}\n`);
      const lines = output.get(key) ?? [];
      lines.push(lineText);
      if (lines.length > 400) lines.shift();
      output.set(key, lines);
    };
    const onEvent = (e) => {
      lastEvent = Date.now();
      if (e.ev === 'load') loading = e.file;
      else if (e.ev === 'loaded') {
        // Start-up before the first test: node + tsx (+ the resolve hook), then importing every file of the shard
        // (the first file to import onnxruntime or src/ pays for it).
        const slow = e.slowest.map(([f, ms]) => `${f} ${seconds(ms)}`).join(', ');
        console.log(
          `  ${label.trim() ? `${label.trim()} ` : ''}start-up: node + tsx ${seconds(e.bootMs)}, importing ${e.files} files ${seconds(e.importMs)} (slowest: ${slow})`,
        );
        startup.push({ bootMs: e.bootMs, importMs: e.importMs });
      } else if (e.ev === 'begin') {
        begun = true;
        running = e.file;
        runningTest = null;
      } else if (e.ev === 'test') {
        running = e.file;
        runningTest = e.name;
      } else if (e.ev === 'result') {
        const c = counts.get(e.file) ?? { tests: 0, fail: 0 };
        c.tests++;
        totals.tests++;
        if (e.skip) totals.skip++;
        else if (e.todo) totals.todo++;
        else if (e.ok) totals.pass++;
        else {
          totals.fail++;
          c.fail++;
          failedHere = true;
          failures.push({ file: e.file, what: e.path.join(' > '), error: e.error });
        }
        counts.set(e.file, c);
      } else if (e.ev === 'suite-fail') {
        failedHere = true;
        failures.push({ file: e.file, what: `${e.path.join(' > ')} (suite)`, error: e.error });
      } else if (e.ev === 'file') {
        done.add(e.file);
        fileMs[e.file] = e.ms;
        const c = counts.get(e.file) ?? { tests: 0, fail: 0 };
        const ok = e.ok && c.fail === 0;
        if (!e.ok) failedHere = true;
        if (!e.ok && c.fail === 0) failures.push({ file: e.file, what: '(file)', error: e.error });
        const mark = ok ? '✔' : '✖';
        console.log(`${mark} ${e.file} (${c.tests} tests, ${seconds(e.ms)})${label}`);
        if (!ok) {
          for (const f of failures.filter((x) => x.file === e.file))
            console.log(`  ✖ ${f.what}\n${indent(f.error ?? '')}`);
          const lines = output.get(e.file);
          if (lines && !verbose) console.log(`  output of ${e.file}:\n${indent(lines.join('\n'))}`);
        }
        running = null;
      } else if (e.ev === 'end') ended = true;
    };
    const lineReader = (stream, onLine) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buf += chunk;
        let i = buf.indexOf('\n');
        while (i >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
          i = buf.indexOf('\n');
        }
      });
      stream.on('end', () => buf && onLine(buf));
    };
    lineReader(child.stdout, (l) => {
      const at = l.indexOf(MARK);
      if (at < 0) return keep(l);
      if (at > 0) keep(l.slice(0, at));
      onEvent(JSON.parse(l.slice(at + MARK.length)));
    });
    lineReader(child.stderr, keep);
    const watchdog = setInterval(() => {
      if (Date.now() - lastEvent > STALL_MS) {
        killedForStall = true;
        child.kill('SIGKILL');
      }
    }, 1000);
    child.on('close', (code, signal) => {
      clearInterval(watchdog);
      const left = shardFiles.filter((f) => !done.has(f));
      if (ended && left.length === 0) {
        // node:test exits 1 after a failing test, already reported; any other non-zero exit is a failure of its own.
        if (code !== 0 && !failedHere)
          failures.push({
            file: '(shard)',
            what: '(shard)',
            error: `the shard exited (${signal ?? `code ${code}`}) after its last file`,
          });
        return resolveShard([]);
      }
      // The shard died (or exited non-zero) before reporting every file: blame the file it was in, rerun the rest.
      const blamed = running ?? (done.size === 0 && !begun ? loading : null);
      const why = killedForStall
        ? `sent nothing for ${seconds(STALL_MS)} and was killed`
        : `exited (${signal ?? `code ${code}`}) before finishing`;
      if (blamed !== null) {
        const where = runningTest ? ` while running "${runningTest}"` : running ? '' : ' while loading';
        failures.push({ file: blamed, what: '(shard)', error: `the shard ${why}${where}` });
        totals.fail++;
        console.log(`✖ ${blamed}: the shard ${why}${where}${label}`);
        const lines = output.get(blamed) ?? output.get('(shard)');
        if (lines) console.log(indent(lines.slice(-60).join('\n')));
      } else if (left.length === 0) {
        failures.push({ file: '(shard)', what: '(shard)', error: `the shard ${why}` });
        const lines = output.get('(shard)');
        if (lines) console.log(indent(lines.slice(-60).join('\n')));
      }
      resolveShard(left.filter((f) => f !== blamed));
    });
  });
}

async function runShards(list) {
  const n = Math.max(
    1,
    Math.min(list.length, Number(option('--shards') ?? process.env.LOOM_TEST_SHARDS ?? availableParallelism())),
  );
  const shards = balance(list, n);
  console.log(`unit: ${list.length} files in ${shards.length} shard(s), one process each`);
  await Promise.all(
    shards.map(async (s, i) => {
      let left = s;
      let restarts = 0;
      while (left.length > 0) {
        const label =
          shards.length > 1 || restarts > 0 ? `  [shard ${i + 1}${restarts > 0 ? `, restart ${restarts}` : ''}]` : '';
        left = await runShard(left, label);
        restarts++;
      }
    }),
  );
}

// ---- a process per file (end-to-end, subprocess, peer and ISOLATED tests) -----------------------------------

function runPerProcess(list, concurrency) {
  return new Promise((resolveRun) => {
    console.log(`per-process: ${list.length} files, ${concurrency} at a time`);
    const child = spawn(
      process.execPath,
      [
        '--import',
        TSX,
        '--test',
        '--test-reporter=spec',
        `--test-concurrency=${concurrency}`,
        `--test-timeout=${FILE_TIMEOUT_MS * 2}`,
        ...list,
      ],
      { env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    // The spec reporter's summary ("ℹ tests 12", "ℹ fail 0", …) gives the counts for the totals line.
    let tail = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk).slice(-4000);
    });
    child.on('close', (code) => {
      const n = (key) => Number(tail.match(new RegExp(`ℹ ${key} (\\d+)`))?.[1] ?? 0);
      totals.tests += n('tests');
      totals.pass += n('pass');
      totals.fail += n('fail') + n('cancelled');
      totals.skip += n('skipped');
      totals.todo += n('todo');
      if (code !== 0)
        failures.push({
          file: '(per-process files)',
          what: `node --test exited ${code}`,
          error: 'see the spec output above',
        });
      resolveRun();
    });
  });
}

/**
 * CPU seconds (user + system) of this process and of every child it waited for, grandchildren included once
 * their parent waited for them: utime, stime, cutime, cstime of /proc/self/stat, in clock ticks (100 per second on
 * Linux). Undefined where there is no /proc.
 */
function cpuSeconds() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [11, 12, 13, 14].reduce((x, i) => x + Number(f[i]), 0) / 100;
  } catch {
    return undefined;
  }
}

if (sharded.length > 0) await runShards(sharded);
if (perProcess.length > 0) {
  // Isolated unit files are short: one per core. End-to-end files train models and spawn servers; two of them at
  // once on 2 cores only trade places, so they keep one at a time.
  const onlyUnit = perProcess.every((f) => !isE2e(f));
  await runPerProcess(
    perProcess,
    onlyUnit ? Math.max(2, availableParallelism()) : Math.max(1, availableParallelism() - 1),
  );
}

if (writeTimings) {
  const merged = {
    ...loadTimings(),
    ...Object.fromEntries(Object.entries(fileMs).map(([f, ms]) => [f, Math.round(ms)])),
  };
  const sorted = Object.fromEntries(
    Object.keys(merged)
      .sort()
      .map((k) => [k, merged[k]]),
  );
  writeFileSync(TIMINGS, `${JSON.stringify(sorted, null, 2)}\n`);
  console.log(`per-file times written to ${TIMINGS}`);
}

const failed = failures.length > 0 || totals.fail > 0;
if (failures.length > 0) {
  console.log('\nfailing:');
  for (const f of failures) console.log(`  ✖ ${f.file} > ${f.what}`);
}
const tier = fast ? 'unit tier' : 'all tiers';
const cpu = cpuSeconds();
const boot = startup.reduce((x, s) => x + s.bootMs + s.importMs, 0);
console.log(
  `\n${tier}: ${totals.tests} tests in ${files.length} files — ${totals.pass} passed, ${totals.fail} failed, ${totals.skip} skipped, ${totals.todo} todo — ${seconds(Date.now() - started)}` +
    `${cpu === undefined ? '' : `, ${cpu.toFixed(1)} CPU s`}${startup.length > 0 ? ` (shard start-up ${seconds(boot)}, summed over ${startup.length} start(s))` : ''}`,
);
if (sessionCache) rmSync(sessionCache, { recursive: true, force: true });
process.exit(failed || totals.tests === 0 ? 1 : 0);
