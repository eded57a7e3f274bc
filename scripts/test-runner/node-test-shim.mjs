// What a test file gets when it imports 'node:test' inside a unit shard (scripts/test-runner/shard.mjs).
// A shard runs many test files in one process; node:test would attach a file's top-level before/after/beforeEach
// hooks to the process-wide root and so to every other file's tests. Here the top-level calls of the file being
// loaded are recorded instead, and the shard replays them inside one describe() per file, so each file's hooks
// scope to that file exactly as they did when it had a process of its own. Outside loading (nested describe
// bodies, calls made while tests run) every function is node:test's own.
import * as real from 'node:test';

export * from 'node:test';

let recording = null;

/** Start recording the top-level test/hook calls of the file about to be imported. */
export function startRecording() {
  recording = [];
}

/** Stop recording and hand back the recorded calls, each a thunk that makes the real call. */
export function stopRecording() {
  const calls = recording ?? [];
  recording = null;
  return calls;
}

function deferrable(call) {
  return (...args) => {
    if (recording === null) return call(...args);
    recording.push(() => call(...args));
    // node:test returns a promise for top-level tests; a file that awaits one keeps loading, as the real test
    // would only run after the file's synchronous part anyway.
    return Promise.resolve();
  };
}

function withVariants(name) {
  const base = real[name];
  const f = deferrable((...args) => base(...args));
  for (const variant of ['skip', 'todo', 'only']) {
    if (typeof base[variant] === 'function') f[variant] = deferrable((...args) => base[variant](...args));
  }
  return f;
}

export const test = withVariants('test');
export const it = withVariants('it');
export const describe = withVariants('describe');
export const suite = withVariants('suite');
export const before = deferrable((...args) => real.before(...args));
export const after = deferrable((...args) => real.after(...args));
export const beforeEach = deferrable((...args) => real.beforeEach(...args));
export const afterEach = deferrable((...args) => real.afterEach(...args));
export default test;
