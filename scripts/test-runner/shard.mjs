// One unit shard: a single Node process (tsx and onnxruntime loaded once) that runs many test files with
// node:test. Started by scripts/run-tests.mjs as
//   node --import tsx --import ./scripts/test-runner/register.mjs --test-reporter=./scripts/test-runner/reporter.mjs \
//        --test-force-exit scripts/test-runner/shard.mjs <timeoutMs> <file>...
// Every file becomes one top-level describe() named by its path, holding the file's own tests and hooks
// (node-test-shim.mjs records them while the file loads). All files load first, then run in the order given:
// a test that registers tests while it runs must never be mistaken for a file's top level.
// --test-force-exit: a file that leaves a handle open (a timer, a server, ORT's threads) cannot keep the shard
// alive once every test is done; the per-file timeout below stops a test that never settles.

import { relative, resolve } from 'node:path';
import { before, beforeEach, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { MARK } from './protocol.mjs';

// Milliseconds from process start to here: node, tsx and the resolve hook (reported with the imports below).
const bootMs = performance.now();

const [timeoutArg, ...files] = process.argv.slice(2);
const timeout = Number(timeoutArg);
const shim = await import(new URL('./node-test-shim.mjs', import.meta.url).href);

// Keeps the event loop alive while files run: a test awaiting a promise nothing will settle would otherwise let
// the loop drain, and node:test would then cancel every later file of the shard, not only that test's. With this
// the hung test meets its file's timeout; --test-force-exit ends the process after the last file.
setInterval(() => {}, 2 ** 30);

// Written synchronously (stdout is a pipe): if a test kills the process, the runner still knows whom to blame,
// which the reporter's buffered events cannot promise.
const send = (event) => process.stdout.write(`${MARK}${JSON.stringify(event)}\n`);

const loaded = [];
const importStart = performance.now();
for (const file of files) {
  const name = relative(process.cwd(), resolve(file)).split('\\').join('/');
  send({ ev: 'load', file: name });
  shim.startRecording();
  let loadError = null;
  const t0 = performance.now();
  try {
    await import(pathToFileURL(resolve(file)).href);
  } catch (err) {
    loadError = err;
  }
  loaded.push({ name, calls: shim.stopRecording(), loadError, ms: performance.now() - t0 });
}
const slowest = [...loaded].sort((a, b) => b.ms - a.ms).slice(0, 3);
send({
  ev: 'loaded',
  files: loaded.length,
  bootMs,
  importMs: performance.now() - importStart,
  slowest: slowest.map((l) => [l.name, l.ms]),
});

for (const { name, calls, loadError } of loaded) {
  describe(name, { timeout }, () => {
    before(() => send({ ev: 'begin', file: name }));
    beforeEach((t) => send({ ev: 'test', file: name, name: t.name }));
    if (loadError !== null) {
      test('loads', () => {
        throw loadError;
      });
      return;
    }
    for (const call of calls) call();
  });
}
